"""AugCon's ROUGE-L dedup with the paper's tokenization (jieba words, rouge_chinese's F) and with ours."""

from __future__ import annotations

import sys

import pytest

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.rouge import greedy_dedup, jieba_words, rouge_l_f
from pipelines.errors import InvalidConfigError

# Reference values: the paper's `utils.calc_rouge(hyp, ref)['f']`, i.e. rouge_chinese 1.0.3's
# `Rouge().get_scores(" ".join(jieba.lcut(hyp)), " ".join(jieba.lcut(ref)))[0]["rouge-l"]["f"]` with
# jieba 0.42.1, computed once with those packages (which the project does not depend on).
ROUGE_CHINESE = [
    ("机器学习模型是如何训练的？", "机器学习模型一般是如何训练的？", 0.9411764656055364),
    ("为什么训练数据的质量很重要？", "训练数据的质量为什么重要？", 0.7999999950222222),
    ("什么是卷积神经网络？", "什么是循环神经网络？", 0.7999999950000002),
    ("What is pass?", "what is pass", 0.5714285665306124),
    ("他说：“好。”然后走了……真的？", "他说好，然后走了。", 0.3809523765079365),
]


@pytest.mark.parametrize(("first", "second", "expected"), ROUGE_CHINESE)
def test_the_jieba_variant_gives_rouge_chineses_f_exactly(first, second, expected):
    pytest.importorskip("jieba")
    assert rouge_l_f(jieba_words(first), jieba_words(second), epsilon=1e-8) == pytest.approx(expected, abs=1e-15)


def test_jieba_words_keep_case_and_punctuation_as_rouge_chinese_sees_them():
    pytest.importorskip("jieba")
    assert jieba_words("什么是卷积神经网络？") == ["什么", "是", "卷积", "神经网络", "？"]
    assert jieba_words("What is pass?") == ["What", "is", "pass", "?"]


def test_the_two_tokenizers_can_decide_a_pair_differently_at_the_papers_threshold():
    pytest.importorskip("jieba")
    ranked = ["What is pass?", "what is pass", "他说：“好。”然后走了……真的？", "他说好，然后走了。"]
    ours = greedy_dedup(ranked, threshold=0.7, quota=10, tokenizer="words")
    papers = greedy_dedup(ranked, threshold=0.7, quota=10, tokenizer="jieba")
    # Lower-cased words without punctuation make the first two identical (F 1.0); the paper's jieba words
    # keep "What" vs "what" and the "?" token apart (F 0.57). Characters make the last two F 0.88; jieba 0.38.
    assert [decision.kept for decision in ours] == [True, False, True, False]
    assert [decision.kept for decision in papers] == [True, True, True, True]
    assert AugConConfig(rouge_tokenizer="jieba").rouge_tokenizer == "jieba"


def test_the_papers_tokenizer_is_refused_with_a_clear_message_where_jieba_is_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # how Python marks a module as not importable
    with pytest.raises(
        InvalidConfigError, match=r'rouge_tokenizer "jieba".*needs the jieba package.*pip install jieba'
    ):
        AugConConfig(rouge_tokenizer="jieba")
    with pytest.raises(InvalidConfigError, match="needs the jieba package"):
        AugConConfig.from_dict({"rouge_tokenizer": "jieba"})
    with pytest.raises(InvalidConfigError, match="needs the jieba package"):
        greedy_dedup(["a", "b"], threshold=0.7, quota=2, tokenizer="jieba")
    assert AugConConfig(rouge_tokenizer="words").rouge_tokenizer == "words"


def test_an_unknown_tokenizer_is_refused_naming_the_known_ones():
    with pytest.raises(InvalidConfigError, match="rouge_tokenizer must be one of words, jieba"):
        AugConConfig(rouge_tokenizer="bert")
