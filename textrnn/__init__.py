"""textrnn: recurrent neural networks for text on Keras 3 (TensorFlow backend)."""

import os as _os

# Keras 3 picks its backend at import time; textrnn is built on TensorFlow.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
