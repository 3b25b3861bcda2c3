"""Quality and diversity measures of generated sentences (BLEU, self-BLEU, judge NLL, reverse NLL)."""
