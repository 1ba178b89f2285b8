"""The DPED authors' published generator checkpoints, fetched on request into Keras' cache.

`pretrained_checkpoint("iphone")` returns the TF1 checkpoint prefix (`$KERAS_HOME/models/iphone_orig`)
after `keras.utils.get_file` has put both files there under their upstream names and checked their
pinned sha256. Once cached, no network is needed. Offline and not cached, `PretrainedUnavailable` says
which URL failed and which folder to put the files in by hand; with `PHOTOENHANCE_OFFLINE=1`
(`common.downloads`) nothing is fetched at all. `dped.convert_original` reads the prefix.
"""
import dataclasses
import pathlib

import keras

from common.downloads import OFFLINE_ENV, downloads_off, keras_cache_dir, sha256_matches
from common.errors import PhotoEnhanceError

DPED_ORIG = "https://raw.githubusercontent.com/aiff22/DPED/master/models_orig/"
AI_CHALLENGE = "https://raw.githubusercontent.com/aiff22/ai-challenge/master/models_pretrained/"
DATA_SUFFIX = ".data-00000-of-00001"
CACHE_SUBDIR = "models"


class PretrainedUnavailable(PhotoEnhanceError):
    """A pretrained checkpoint is neither cached nor downloadable (offline, or a corrupted download)."""


@dataclasses.dataclass(frozen=True)
class PretrainedCheckpoint:
    """One upstream TF1 checkpoint: where it lives, its file prefix and the sha256 of its two files."""

    base_url: str
    prefix: str
    index_sha256: str
    data_sha256: str
    description: str

    def files(self):
        """(upstream file name, sha256) of the index and the data file."""
        return ((self.prefix + ".index", self.index_sha256), (self.prefix + DATA_SUFFIX, self.data_sha256))


PRETRAINED = {
    "iphone": PretrainedCheckpoint(
        DPED_ORIG, "iphone_orig", "8777e61b30adb8c4e99eb22e5ecca3f80c237e6288dc07c8a3fb7e6fee6865a8",
        "9d289d0914ae0f41ded639e6282e6710ebb79ab8dc23865198c2748d7dc083fc",
        "DPED paper generator (resnet_12_64) trained on iPhone 3GS -> Canon 70D pairs"),
    "sony": PretrainedCheckpoint(
        DPED_ORIG, "sony_orig", "5e56d778b4e9149883cc00a79e7f4f5dd2e1ee35e64e3419c64b5433b1891574",
        "6338ab1c409a67c99ad5da416051887a63b576c351d8447741c8d378671e3ab8",
        "DPED paper generator (resnet_12_64) trained on Sony Xperia Z -> Canon 70D pairs"),
    "blackberry": PretrainedCheckpoint(
        DPED_ORIG, "blackberry_orig", "e907cd7a93831f9138f1706e6d40b997b18ca4b8afc5a6da5f0d3a2aab8aa0e1",
        "ec3332ae3e03d4317fd4c88e3f1885c5df8722f34d4142ec8f77025c8b3add82",
        "DPED paper generator (resnet_12_64) trained on BlackBerry Passport -> Canon 70D pairs"),
    "pirm_resnet_8_32": PretrainedCheckpoint(
        AI_CHALLENGE, "dped_resnet_8_32", "3a30c97bf26c14a8b0ff7bb883a8a9e8ea6ac0bd8ac2361a3f6721f653df94ff",
        "9688357f08e38cc3ab91d43e5edb887c90b532e5b068f0f5685a76a272de47c4",
        "PIRM 2018 challenge baseline (resnet_8_32, 2 blocks, 32 channels), iPhone -> Canon"),
}


def pretrained_checkpoint(name):
    """Fetch (or find in the cache) the checkpoint `name` and return its TF1 prefix as a `pathlib.Path`."""
    if name not in PRETRAINED:
        raise PretrainedUnavailable(f"unknown pretrained model {name!r}; choose one of {sorted(PRETRAINED)}")
    entry = PRETRAINED[name]
    cache_dir = keras_cache_dir()
    paths = []
    for file_name, sha256 in entry.files():
        url = entry.base_url + file_name
        if downloads_off() and not sha256_matches(cache_dir / CACHE_SUBDIR / file_name, sha256):
            raise PretrainedUnavailable(
                f"pretrained {name!r}: {file_name} is not in {cache_dir / CACHE_SUBDIR} (or fails its sha256) and "
                f"{OFFLINE_ENV} forbids downloads; download {entry.prefix}.index and {entry.prefix}{DATA_SUFFIX} "
                f"from {entry.base_url} into {cache_dir / CACHE_SUBDIR}")
        try:
            paths.append(pathlib.Path(keras.utils.get_file(
                file_name, url, file_hash=sha256, hash_algorithm="sha256", cache_subdir=CACHE_SUBDIR,
                cache_dir=str(cache_dir))))
        except Exception as exc:  # urllib, socket and hash errors all surface as plain Exception/ValueError.
            reason = (str(exc).splitlines() or [type(exc).__name__])[0].rsplit(" -- ", 1)[-1][:160]
            raise PretrainedUnavailable(
                f"pretrained {name!r}: cannot fetch {url} ({reason}); download "
                f"{entry.prefix}.index and {entry.prefix}{DATA_SUFFIX} from {entry.base_url} into "
                f"{cache_dir / CACHE_SUBDIR}") from None
    return paths[0].with_name(entry.prefix)
