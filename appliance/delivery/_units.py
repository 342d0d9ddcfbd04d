"""The systemd units and the configuration template a bundle installs.

Both services run as the dedicated ``greffier`` user with a read-only system, a private
/tmp, no privilege escalation, and only the address families they need; neither may
reach any IP address but loopback (``IPAddressDeny=any``): IT adds what it configures (the
directory, the identity provider) in a drop-in."""

from __future__ import annotations

_HARDENING = """\
User=greffier
Group=greffier
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=no
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077
IPAddressDeny=any
IPAddressAllow=localhost
"""

GREFFIER_SERVICE = f"""\
[Unit]
Description=Greffier knowledge appliance (API and web UI)
After=network.target greffier-llm.service
Wants=greffier-llm.service

[Service]
Type=simple
Environment=GREFFIER_CONFIG=/etc/greffier/greffier.toml
ExecStart=/opt/greffier/venv/bin/greffier serve
Restart=on-failure
{_HARDENING}RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
ReadWritePaths=/var/lib/greffier
StateDirectory=greffier
StateDirectoryMode=0700

[Install]
WantedBy=multi-user.target
"""

GREFFIER_LLM_SERVICE = f"""\
[Unit]
Description=Greffier model service (vLLM, OpenAI-compatible, loopback only)
After=network.target

[Service]
Type=simple
Environment=GREFFIER_CONFIG=/etc/greffier/greffier.toml
Environment=HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
ExecStart=/opt/greffier/venv/bin/greffier llm serve
Restart=on-failure
{_HARDENING}RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
ReadWritePaths=/var/lib/greffier

[Install]
WantedBy=multi-user.target
"""

CONFIG_TEMPLATE = """\
# /etc/greffier/greffier.toml: see the README's settings table for every key.
data_dir = "/var/lib/greffier"

[api]
host = "0.0.0.0"
port = 8443

[embeddings]
model_dir = "/opt/greffier/models/embedder"

[llm]
model_dir = "/opt/greffier/models/llm-dev"
python = "/opt/greffier/venv-llm/bin/python"
"""

FILES = {
    "systemd/greffier.service": GREFFIER_SERVICE,
    "systemd/greffier-llm.service": GREFFIER_LLM_SERVICE,
    "config/greffier.toml": CONFIG_TEMPLATE,
}
