"""Multi-domain image datasets for the DomainBed protocol (``asymlora domainbed``).

``DATASETS`` maps a name to a :class:`DatasetSpec`: ``RotatedMNIST`` and ``MNISTOptdigits`` on real
digits installed by pip (:mod:`.mnist`), and ``VLCS``, ``PACS``, ``OfficeHome``, ``TerraIncognita``
from DomainBed's folder layout (:mod:`.image_folder`).
"""

from .base import DATASETS, DatasetSpec, Environment, MultiDomainData, get_dataset, register_dataset
from . import image_folder, mnist  # noqa: F401 (register)

__all__ = ["DATASETS", "DatasetSpec", "Environment", "MultiDomainData", "get_dataset", "register_dataset"]
