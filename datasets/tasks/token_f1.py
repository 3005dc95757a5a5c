"""A --metric python: example: token-overlap F1 between the answer and the reference (SQuAD-style),
a partial score in [0, 1]. Use it as --metric python:datasets/tasks/token_f1.py:token_f1."""


def token_f1(answer, reference, example):
    import re
    from collections import Counter

    def tokens(text):
        return re.findall(r"\w+", str(text).lower())

    if answer is None:
        return 0.0
    references = reference if isinstance(reference, list) else [reference]
    best = 0.0
    for ref in references:
        a, r = tokens(answer), tokens(ref)
        common = sum((Counter(a) & Counter(r)).values())
        if common == 0:
            continue
        precision, recall = common / len(a), common / len(r)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
