"""SN1: Bittensor Subnet 1 — streamed LLM answers to grounded questions, scored and weighted."""

__version__ = "2.0.0"


def spec_version(version: str = __version__) -> int:
    """The chain's version_key: 10000*major + 100*minor + patch."""
    major, minor, patch = (int(p) for p in version.split(".")[:3])
    return 10000 * major + 100 * minor + patch


__spec_version__ = spec_version()
