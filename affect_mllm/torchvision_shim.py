"""Import hook that lets a CUDA-built torchvision import beside a CPU-only torch.

PyPI's torchvision wheels are CUDA builds. Beside torch's CPU build their compiled `_C` cannot load, which is
harmless for the pure-Python transforms that transformers' Qwen image/video processors use, except that
`torchvision/_meta_registrations.py` then registers fake kernels for `torchvision::nms`/`qnms`, which do not
exist, and `import torchvision` dies. Defining the two operator schemas first lets the import succeed.

`affect-mllm doctor --fix` copies this file into site-packages as a stand-alone module and adds a `.pth` line
importing it, so that every interpreter of the environment (vLLM's spawned workers included) gets it. It is a
no-op wherever torchvision's own `_C` loads.
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path


class TorchvisionOpsFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that, on the first import of torchvision, defines its missing operator schemas."""

    def __init__(self) -> None:
        self.done = False
        self.library = None  # keeps the torch.library fragment alive for the life of the process

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision" or self.done:
            return None
        self.done = True
        self._define_missing_ops()
        return None  # the normal finders import torchvision itself

    def _define_missing_ops(self) -> None:
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            return
        import torch

        compiled = sorted(Path(spec.submodule_search_locations[0]).glob("_C*.so"))
        try:
            if compiled:
                torch.ops.load_library(str(compiled[0]))
                return
        except OSError:
            pass
        if hasattr(torch.ops.torchvision, "nms"):
            return
        self.library = torch.library.Library("torchvision", "FRAGMENT")
        self.library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        self.library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def install() -> None:
    """Put the finder first on sys.meta_path (idempotent)."""
    if not any(isinstance(finder, TorchvisionOpsFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, TorchvisionOpsFinder())
