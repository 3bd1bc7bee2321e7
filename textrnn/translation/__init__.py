"""Translation with attention: a (bidirectional) recurrent encoder, Bahdanau or Luong
attention, a recurrent decoder; decoding by greedy search, beam search or sampling.

Modules: `config` (recipe schema), `data` (Multi30k, spa-eng, parallel folders), `model`
(`Seq2Seq`), `train` (with scheduled sampling), `evaluate` (sacreBLEU, chrF),
`translator` (`Translator`: strings in, translations out) and `export`.
"""

from textrnn.training.task_registry import Task, register_task
from textrnn.translation import evaluate, export, train
from textrnn.translation.config import TranslationConfig

register_task(
    Task(
        name="translate",
        description="translation with attention (Multi30k de-en, spa-eng, any parallel folder)",
        config_class=TranslationConfig,
        train=train.train_translation,
        load_run=train.load_translation_run,
        evaluate=evaluate.evaluate_run,
        export=export.export_run,
        use_verb="translate",
        summarize=train.summarize_results,
    )
)
