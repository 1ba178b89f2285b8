"""TensorFlow Datasets builder for DPED (Ignatov et al. 2017), read from a manual download.

Configs `iphone`, `sony`, `blackberry`; splits `train` (the `training_data` patches) and `test` (the
`test_data/patches`); every example is one aligned 100x100 pair `{"phone": image, "dslr": image}` (the
DSLR is a Canon 70D). Build and load:

    import tensorflow_datasets as tfds
    from datasets import dped  # registers the builder
    ds = tfds.load("dped/iphone", split="train",
                   download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                       manual_dir="/path/to/folder/with/dped")})

The JPEG files are stored as they are (no re-encoding), so pixels match the released files. For
training with exact step-keyed resume, `data_sources` prepares the dataset in the random-access
`array_record` format and returns index-addressable splits for `common.data.tfds_pair_batches`.
"""
import pathlib

import tensorflow_datasets as tfds

from common.data import DSLR, PHONES, dped_folders, paired_files, scan_pairs
from common.errors import PhotoEnhanceError
from common.images import read_image


class DpedConfig(tfds.core.BuilderConfig):
    """One phone of DPED."""

    def __init__(self, *, phone, **kwargs):
        super().__init__(name=phone, description=f"{phone} photos paired with Canon 70D photos", **kwargs)
        self.phone = phone


class Dped(tfds.core.GeneratorBasedBuilder):
    """DPED: aligned 100x100 phone/DSLR patch pairs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Patches of the released dataset, train and test splits."}
    BUILDER_CONFIGS = [DpedConfig(phone=p) for p in PHONES]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download DPED from http://people.ee.ethz.ch/~ihnatova/ (see also github.com/aiff22/DPED) and unpack it,
    so that the manual directory holds `dped/<phone>/training_data/<phone>/<i>.jpg`,
    `dped/<phone>/training_data/{DSLR}/<i>.jpg` and `dped/<phone>/test_data/patches/...` (the `dped/`
    folder itself, or one `dped/<phone>/` folder, is accepted as the manual directory too).
    """

    def _info(self):
        image = tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"phone": image, "dslr": image}),
            supervised_keys=("phone", "dslr"),
            homepage="http://people.ee.ethz.ch/~ihnatova/",
            citation="""@inproceedings{ignatov2017dslr,
  title={DSLR-Quality Photos on Mobile Devices with Deep Convolutional Networks},
  author={Ignatov, Andrey and Kobyshev, Nikolay and Timofte, Radu and Vanhoey, Kenneth and Van Gool, Luc},
  booktitle={ICCV}, year={2017}}""",
        )

    def _split_generators(self, dl_manager):
        phone = self.builder_config.phone
        return {split: self._generate_examples(*dped_folders(dl_manager.manual_dir, phone, split))
                for split in ("train", "test")}

    def _generate_examples(self, phone_dir, dslr_dir):
        files_phone, files_dslr = paired_files(phone_dir, dslr_dir)
        files_phone, files_dslr, report = scan_pairs(files_phone, files_dslr)
        managed = set(report.managed)  # turned or ICC-tagged: stored upright sRGB (re-encoded), as enhance reads
        for fp, fd in zip(files_phone, files_dslr):
            yield pathlib.Path(fp).stem, {k: read_image(f) if f in managed else f
                                          for k, f in (("phone", fp), ("dslr", fd))}


def data_sources(phone, manual_dir, data_dir=None):
    """`{"train": source, "test": source}` random-access splits of `dped/<phone>`, whose examples hold the
    stored JPEG bytes; prepares the dataset from `manual_dir` in `array_record` format first if needed.

    `data_dir`: TFDS's data folder (default TFDS's own, ~/tensorflow_datasets). A dataset already prepared
    there in a format without random access (e.g. TFRecord) raises `PhotoEnhanceError` saying how to
    re-prepare it.
    """
    builder = Dped(config=phone, data_dir=data_dir)
    if not builder.is_prepared():
        for split in ("train", "test"):  # a missing manual dir names the folders looked for, not TFDS's assert
            dped_folders(manual_dir, phone, split)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
                                     file_format="array_record")
    random_access = set(tfds.core.file_adapters.FileFormat.with_random_access())
    formats = builder.info.available_file_formats() or {builder.info.file_format}
    if not set(formats) & random_access:
        found = ", ".join(sorted(str(getattr(f, "value", f)) for f in formats))
        raise PhotoEnhanceError(
            f"the TFDS dataset dped/{phone} in {builder.data_dir} was prepared as {found}, which has no random "
            "access by index (needed for exact resume); delete that folder (or pass another TFDS data dir) "
            "so that it is re-prepared as array_record, or prepare it yourself with "
            "builder.download_and_prepare(file_format='array_record', ...)")
    skip = {"phone": tfds.decode.SkipDecoding(), "dslr": tfds.decode.SkipDecoding()}
    return {split: builder.as_data_source(split=split, decoders=skip) for split in ("train", "test")}
