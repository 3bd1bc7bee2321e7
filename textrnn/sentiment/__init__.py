"""Sentiment classification: a recurrent encoder, pooled (last, mean, max, attention),
then a softmax over the labels.

Modules: `config` (recipe schema), `data` (SST-2, IMDB, TSV folders), `encoding` (text
to ids and truncation), `model` (`SentimentClassifier`), `train`, `evaluate`,
`predictor` (`SentimentPredictor`: strings in, labels out) and `export`.
"""

from textrnn.sentiment import evaluate, export, train
from textrnn.sentiment.config import SentimentConfig
from textrnn.training.task_registry import Task, register_task

register_task(
    Task(
        name="sentiment",
        description="sentiment classification (SST-2, IMDB, any TSV folder)",
        config_class=SentimentConfig,
        train=train.train_sentiment,
        load_run=train.load_sentiment_run,
        evaluate=evaluate.evaluate_run,
        export=export.export_run,
        use_verb="predict",
        summarize=train.summarize_results,
    )
)
