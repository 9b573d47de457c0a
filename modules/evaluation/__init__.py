"""Evaluation: ranking metrics, search evaluation against baselines, the blessing, bootstrap intervals and the
recommender evaluation."""
