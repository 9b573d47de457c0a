"""PixelMatch: multimodal visual search and recommendation for product catalogs, as a TFX pipeline."""
from setuptools import find_packages, setup

setup(
    name="pixelmatch",
    version="0.1.0",
    description="Multimodal visual search and recommendation engine for product catalogs (TFX pipeline)",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["modules*", "components*", "pipelines*", "serving*"]),
    py_modules=["pixelmatch_cli"],
    include_package_data=True,
    package_data={"serving": ["static/*"], "pipelines": ["schema/*"], "modules.encoders": ["data/*.json"]},
    entry_points={"console_scripts": ["pixelmatch=pixelmatch_cli:app"]},
)
