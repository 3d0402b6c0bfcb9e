"""Build of the pybind11 module raptor.policy_export._core from the firmware's C core (metadata: pyproject.toml)."""

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

setup(ext_modules=[Pybind11Extension("raptor.policy_export._core", ["policy_export/_core.cpp"],
                                     include_dirs=["firmware"], cxx_std=11,
                                     extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"])])
