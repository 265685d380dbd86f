"""The paper's method: the model and its training (TRL SFTTrainer), generation and label scoring, the
three stages (generator, augmentation, classifiers) and their evaluation (metrics, baselines)."""
