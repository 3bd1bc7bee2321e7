"""Data: the dataset registry, verified fetching, and the `tf.data` pipelines.

Modules: `registry` (`DATASETS`: sources, checksums, splits), `fetching` (`fetch`: mirror,
cache, download, never a hang), `pipelines` (language-model windows, length bucketing,
padding). Each task's own corpora readers live in its package (`textrnn.charlm.data`,
`textrnn.sentiment.data`, `textrnn.translation.data`).
"""
