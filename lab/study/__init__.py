"""Studies: many training runs of one recipe (models x seeds), their speed, and a report of what they show.

- :mod:`.spec`: the study file (recipe, groups of models with their twin, seeds).
- :mod:`.runner`: trains the runs not yet done, one result file each, resumable, several at a time.
- :mod:`tl_models.visualize.similarity`: how alike the learned tokens' spatial maps are (in the package).
- :mod:`.speed`: every model's training and inference img/s, model only and end to end, in one process.
- :mod:`.report`, :mod:`.plot`: the table (mean and spread over seeds), the targets, top-1 against cost.
- :mod:`.cards`: the model cards of the weights a study ships.
"""
from tl_models.visualize.similarity import pairwise_map_similarity, token_map_similarity

from .runner import StudySettings, pending_runs, result_path, run_study
from .spec import RunSpec, StudyConfigError, StudySpec, load_study

__all__ = ['RunSpec', 'StudyConfigError', 'StudySettings', 'StudySpec', 'load_study', 'pairwise_map_similarity',
           'pending_runs', 'result_path', 'run_study', 'token_map_similarity']
