"""Character-level language modelling: embedding, stacked recurrent layers, logits over
characters; generation by greedy search, beam search or sampling.

Modules: `config` (recipe schema), `data` (corpora and their split), `model` (`CharLM`),
`train` (with truncated backpropagation through time for stream windows), `evaluate`,
`generator` (`CharGenerator`, `generate`) and `export`.
"""

from textrnn.charlm import evaluate, export, train
from textrnn.charlm.config import CharLMConfig
from textrnn.training.task_registry import Task, register_task

register_task(
    Task(
        name="charlm",
        description="character-level language modelling (tinyshakespeare, any text file)",
        config_class=CharLMConfig,
        train=train.train_charlm,
        load_run=train.load_charlm_run,
        evaluate=evaluate.evaluate_run,
        export=export.export_run,
        use_verb="generate",
        summarize=train.summarize_results,
    )
)
