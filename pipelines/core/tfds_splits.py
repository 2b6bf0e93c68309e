"""TensorFlow Datasets, domain-free: build a dataset by name and choose train/validation/test slices."""

from __future__ import annotations

from pipelines.core.errors import UserError


def prepared_builder(name: str, data_dir: str | None):
    """``tfds.builder(name)`` after ``download_and_prepare`` (downloads on first use)."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        builder.download_and_prepare()
    except Exception as err:  # tfds raises many types: unknown name, no network, bad data_dir
        raise UserError(f"tfds dataset '{name}' is not available: {str(err).splitlines()[0]}") from None
    return builder


def own_split(names, *prefixes: str) -> str | None:
    """The dataset's split for a role: one named exactly by the first prefix, else the first (sorted) name that starts
    with one of them (LibriSpeech: train_clean100, dev_clean, test_clean)."""
    if prefixes[0] in names:
        return prefixes[0]
    return next((name for name in sorted(names) if name.startswith(prefixes)), None)


def split_slices(info, validation_fraction: float, test_fraction: float) -> dict[str, str]:
    """tfds split strings for train/validation/test: the dataset's own splits where it has them,
    otherwise slices of its training split (validation first, then test)."""
    splits = list(info.splits)
    train = own_split(splits, "train") or splits[0]
    val_pct = int(round(validation_fraction * 100))
    test_pct = int(round(test_fraction * 100))
    test = own_split(splits, "test")
    validation = own_split(splits, "validation", "dev")
    taken = (0 if validation else val_pct) + (0 if test else test_pct)
    return {
        "train": f"{train}[{taken}%:]" if taken else train,
        "validation": validation or f"{train}[:{val_pct}%]",
        "test": test or f"{train}[{0 if validation else val_pct}%:{taken}%]",
    }
