"""Export: writing SavedModels that take and return raw strings.

Modules: `savedmodel` (`write_savedmodel`, `core_op_report`), `limits` (`ExportLimits`,
the caps of one call) and `input_checks` (the in-graph input checks that enforce them and
the value domains of the decoding parameters), `versions` (TensorFlow Serving's layout:
numbered versions of a base directory, written under a temporary name), `warmup` (its
`assets.extra/tf_serving_warmup_requests` file), `metadata` (the
`assets.extra/textrnn_metadata.json` asset) and `run_export` (`export_run_version`, what
`textrnn export` does). Each task builds its own
exported module (`textrnn.charlm.export`, `textrnn.sentiment.export`,
`textrnn.translation.export`); `textrnn export` dispatches through the task registry.
"""
