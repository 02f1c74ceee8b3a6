"""Training: the data a recipe draws from (`data`) and the one loop every recipe runs (`loop`)."""

from harness.training.data import Example, TrainingData, epochs

__all__ = ["Example", "TrainingData", "epochs"]
