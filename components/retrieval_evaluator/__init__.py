"""retrieval_evaluator component."""
