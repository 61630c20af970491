"""The catalog: templates (models and their flavors), platforms and presets, regions and inventories.

Data, not code: YAML files shipped in `data/` plus the operator's own (`<data-dir>/catalog/*.yaml`,
`$PODIUM_CATALOG_DIR`), validated by the models in `models.py`. See docs/catalog.md.
"""

from podium.catalog.catalog import Catalog, Recipe, Region, TemplateView
from podium.catalog.inventory import Inventory, parse_nvidia_smi_csv
from podium.catalog.loader import CatalogError
from podium.catalog.models import CPU, Flavor, GpuOption, GpuType, Platform, Preset, Template

__all__ = [
    "CPU",
    "Catalog",
    "CatalogError",
    "Flavor",
    "GpuOption",
    "GpuType",
    "Inventory",
    "Platform",
    "Preset",
    "Recipe",
    "Region",
    "Template",
    "TemplateView",
    "parse_nvidia_smi_csv",
]
