"""The appliance: settings, the composition root, the ingest pipeline and the CLI."""

from ._appliance import Appliance
from ._indexer import FileOutcome, Indexer, IngestReport, Progress
from ._settings import Settings, load_settings

__all__ = ["Appliance", "FileOutcome", "Indexer", "IngestReport", "Progress", "Settings",
           "load_settings"]
