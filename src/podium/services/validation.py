"""Checks that need more than the spec itself: the runtime's abilities and the catalog."""

from __future__ import annotations

from podium.core.errors import Invalid, PodiumError
from podium.core.specs import EndpointSpec
from podium.services.catalog_view import CatalogLike, CatalogView

_SPEC_FIELDS = {
    "model_name": "template.model_name",
    "flavor_name": "template.flavor_name",
    "gpu_type": "compute.gpu_type",
    "gpu_count": "compute.gpu_count",
    "region": "compute.region",
}


# Runtimes that run a command, not an image (Ray would run images through a node's engine: not yet).
_PROCESS_RUNTIMES = ("local", "ray")


class SourceValidator:
    def __init__(self, catalog: CatalogLike | None, runtime_name: str | None) -> None:
        """runtime_name: the one runtime of every region; None: each region's own, from the catalog."""
        self.catalog = catalog
        self.runtime_name = runtime_name

    def _runtime_of(self, region: str) -> str:
        """Each region runs its own runtime (catalog `regions[].runtime`): the checks follow the region's."""
        if self.runtime_name is not None or self.catalog is None:
            return self.runtime_name or "local"
        return str(getattr(self.catalog.region(region), "runtime", "local"))

    def __call__(self, spec: EndpointSpec) -> None:
        if self.catalog is not None:
            try:
                self.catalog.region(spec.compute.region)
            except Exception as exc:
                raise Invalid("compute.region", CatalogView(self.catalog).unknown_region(spec.compute.region)) from exc
        if spec.container is not None:
            runtime = self._runtime_of(spec.compute.region)
            if runtime in _PROCESS_RUNTIMES and spec.container.image and spec.container.command:
                raise Invalid(
                    "container.image",
                    f"the {runtime} runtime runs processes and cannot run the image {spec.container.image!r}: "
                    "the docker runtime would (declare the region with `runtime: docker` in <data-dir>/catalog/); "
                    "here, drop --image to run --container-command as a process",
                )
            if runtime in _PROCESS_RUNTIMES and not spec.container.command:
                raise Invalid(
                    "container.command",
                    f"the {runtime} runtime runs a process, not an image: give --container-command "
                    "(e.g. 'python3 server.py --port $PORT')",
                )
            return
        assert spec.template is not None
        if self.catalog is None:
            raise Invalid("template", "no template catalog is loaded")
        t, c = spec.template, spec.compute
        try:
            self.catalog.resolve(t.model_name, t.flavor_name, c.gpu_type, c.gpu_count, c.region)
        except Invalid as exc:  # the catalog names its own fields; say where they are in the spec
            field = _SPEC_FIELDS.get(exc.field, exc.field)
            message = exc.message.removeprefix(f"{exc.field}: ")
            raise Invalid(field, message) from exc
        except Exception as exc:  # the catalog's NotFound/KeyError/ValueError: an invalid combination
            message = exc.message if isinstance(exc, PodiumError) else str(exc).strip("'\"")
            raise Invalid(
                "template",
                f"{message or 'no such template'} (model {t.model_name!r}, flavor {t.flavor_name!r}, "
                f"gpu {c.gpu_type} x{c.gpu_count}, region {c.region!r}; see `podium template list`)",
            ) from exc


def ignored_settings(spec: EndpointSpec) -> list[str]:
    """Settings that are stored but that no runtime acts on yet: said in the create/update answer
    (`warnings`) and by the CLI, never dropped in silence."""
    out = []
    if spec.ssh_key:
        out.append(
            "ssh_key is stored but not used: replicas run no SSH server; "
            "use `podium endpoint logs` (and `--follow`) to look into a replica"
        )
    if spec.subnet_id:
        out.append(
            "subnet_id is stored but not used: Podium has no subnets; replicas are reached "
            "through the data plane URL, or at their instances' address"
        )
    if spec.public:
        out.append(
            "public is stored but not used: replicas listen where their runtime puts them (127.0.0.1 on the "
            "local runtime); to serve other machines, run `podium up --host 0.0.0.0` and call the data plane URL"
        )
    return out
