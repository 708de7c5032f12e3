from typing import Optional

__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']
__version__ = '2.7.1+rocm6.3'
debug = False
cuda: Optional[str] = None
git_version = 'e2d141dbde55c2a4370fac5165b0561b6af4798b'
hip: Optional[str] = '6.3.42131-fa1d09cbd'
xpu: Optional[str] = None
