"""The data of one study: the dataset read, checked, split and preprocessed, ready for every trial."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hpo.config.schema import DataSection
from hpo.data.cache import PreparedCase, prepare_cases
from hpo.data.layouts import DatasetInfo, read_dataset
from hpo.data.preprocessing import PreprocessingSettings
from hpo.data.splits import select_subset, split_cases

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyData:
    """Preprocessed training and validation cases with the dataset's label names."""

    info: DatasetInfo
    preprocessing: PreprocessingSettings
    training: list[PreparedCase]
    validation: list[PreparedCase]

    @property
    def in_channels(self) -> int:
        return int(self.training[0].image.shape[0])

    @property
    def structure_values(self) -> list[int]:
        """The declared foreground label values, in order; they may have gaps (such as 1, 2, 4)."""
        return sorted(self.info.structure_names)

    @property
    def num_classes(self) -> int:
        """Output channels of the network: background plus one per declared structure."""
        return max(self.info.labels) + 1

    def describe(self) -> dict:
        """Summarise the data for study user attributes: dataset, split, preprocessing and label names."""
        return {
            "dataset": str(self.info.root),
            "layout": self.info.layout,
            "labels": {str(value): name for value, name in self.info.labels.items()},
            "channels": list(self.info.channel_names),
            "training_cases": [case.case_id for case in self.training],
            "validation_cases": [case.case_id for case in self.validation],
            "preprocessing": self.preprocessing.to_dict(),
        }


def load_study_data(section: DataSection, spatial_dims: int) -> StudyData:
    """Read, check, split and preprocess the dataset named by the config's `data` section."""
    info = read_dataset(section.path, section.layout)
    cases = select_subset(list(info.cases), section.max_cases, section.split_seed)
    folds = section.folds.model_dump() if section.folds else None
    training, validation = split_cases(cases, section.validation_fraction, section.split_seed, folds, section.group_by)

    settings = PreprocessingSettings(section.orientation, tuple(section.clip_percentiles), spatial_dims)
    prepared = prepare_cases(info, training + validation, settings, section.cache_dir)
    logger.info(
        "Dataset %s (%s layout): %d training and %d validation cases, structures %s",
        info.root, info.layout, len(training), len(validation), list(info.structure_names.values()),
    )
    return StudyData(info, settings, prepared[: len(training)], prepared[len(training):])
