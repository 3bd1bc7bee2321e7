"""Export: writing SavedModels that take and return raw strings.

Module: `savedmodel` (`write_savedmodel`, `core_op_report`). Each task builds its own
exported module (`textrnn.charlm.export`, `textrnn.sentiment.export`,
`textrnn.translation.export`); `textrnn export` dispatches through the task registry.
"""
