"""AugCon's configuration: the Context-Split-Tree, the contrastive scorer, ranking and answering.

Defaults are the paper's (quanshr/AugCon `config.py`, `step2_scorer.py`, `step3_get_a.py`):
root chunks of at most 500 characters, no split below 20, one question per 35 characters with
15% over-generation, question temperature 0.85, ROUGE-L threshold 0.7, answers at temperature 0
(DSPy's default, which the paper's `ChainOfThought` answers use) and the yes/no judge at 0.2 (the
paper's `a_temperature`, used only by its judge), up to 3 bootstrapped demonstrations; the scorer is the LM with LoRA (r 32, alpha 32, all-linear,
dropout 0.05) and a value head, 4 epochs, batch 4, 50 warmup steps, weight decay 0.01 and
transformers' default learning rate 5e-5.

The paper counts Chinese characters. `length_scale` multiplies every character threshold, so an
English corpus can keep the paper's ratios (about 3 English characters carry what one Chinese
character does) without changing the paper's numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipelines.augcon.rouge import ROUGE_TOKENIZERS, check_jieba_available
from pipelines.common.config_fields import MAX_SEED, known_fields
from pipelines.common.presets import Preset
from pipelines.errors import InvalidConfigError
from pipelines.llm.loader import BackendSpec
from pipelines.training.arguments import LoraSettings, TrainingArgs

MAX_CHARACTERS = 1_000_000
"""Upper bound of every character threshold (a root chunk, a leaf, a paragraph)."""


def _scorer_training_defaults() -> TrainingArgs:
    # step2_scorer.py: 4 epochs, batch 4, warmup 50 steps, weight decay 0.01, lr unset (HF default 5e-5);
    # LoRA r 32, alpha 32, all-linear, dropout 0.05. Warmup is in steps there, hence the override. Its
    # DeepSpeed config's WarmupLR warms up, then holds the rate: HF's constant_with_warmup, not linear decay.
    return TrainingArgs(
        lr_scheduler="constant_with_warmup",
        learning_rate=5e-5,
        num_epochs=4.0,
        per_device_batch_size=4,
        weight_decay=0.01,
        max_length=512,
        max_prompt_length=448,
        lora=LoraSettings(r=32, alpha=32, dropout=0.05, target_modules="all-linear"),
        trainer_overrides={"warmup_steps": 50},
        save_steps=100,
    )


@dataclass(frozen=True)
class AugConInputs:
    """The models an AugCon run uses; the documents and few-shot set are the run directory's snapshots."""

    generator: BackendSpec
    """The model that splits contexts, asks and answers (a registry entry's `backend_spec()`)."""
    scorer: BackendSpec | None = None
    """The model whose local weights the scorer trains from (the generator's, in the paper); None (an
    endpoint has no weights) skips the scorer and keeps the generation order."""


@dataclass(frozen=True)
class AugConConfig:
    """One AugCon run over a snapshot of documents; every field has the paper's default."""

    # -- corpus -> root chunks ----------------------------------------------------------------
    max_length: int = 500
    """Longest root chunk in characters: AugCon's "maximum granularity" of the largest questions."""
    min_length: int = 20
    """A context of this many characters or fewer is never split again (a leaf of the tree)."""
    character_per_piece: int = 35
    """One kept question per this many characters of a root chunk: gen_count = len(chunk) // this."""
    min_paragraph_length: int = 100
    """Paragraphs of this many characters or fewer are skipped when chunking (load_data.py)."""
    length_scale: float = 1.0
    """Multiplies the four character thresholds above. The paper's values are Chinese characters:
    1.0 keeps them; about 3 gives English text the same density of questions."""
    max_chunks_per_document: int = 0
    """Use at most this many root chunks of each document (0: all), to bound a demo run."""

    # -- Context-Split-Tree -------------------------------------------------------------------
    over_generation: float = 1.15
    """Grow trees on a chunk until it has gen_count x this many questions."""
    max_attempts: int = 4
    """Model calls per node until its output parses (the paper retries up to 4 times)."""
    min_question_length: int = 5
    """A question shorter than this (characters) is dropped with its whole branch."""
    max_rounds_per_chunk: int = 10
    """Trees grown per chunk at most. The paper has no cap and loops forever on a model that never
    follows the format; the cap makes such a run end."""
    question_temperature: float = 0.85
    """Sampling temperature of the question-and-split calls."""
    question_top_p: float = 1.0
    question_max_tokens: int = 1024
    """New tokens per question-and-split call (question plus both rewritten sub-contexts)."""
    cst_demonstrations: int = 3
    """Examples of the QA few-shot set shown in the question-and-split prompt (the paper shows 3)."""
    constrained_output: bool = True
    """Decode the question-and-split replies and the yes/no self-judge under a grammar of their form, so
    every reply parses (ours: the paper generates unconstrained and retries what does not parse; off
    reproduces that)."""
    min_split_grounding: float = 0.5
    """A sub-context is dropped (not split further) when fewer than this share of its words appear in
    order in its parent (ROUGE-L recall against the parent): the model invented it instead of splitting.
    0 keeps every split, as the paper does."""

    # -- contrastive scorer -------------------------------------------------------------------
    negatives_per_variant: int = 500
    """Each of the three weaker prompts re-asks at most this many (and at most a third of all)
    questions; a negative is the weaker prompt's question for the same context."""
    min_scorer_pairs: int = 4
    """With fewer (positive, negative) pairs the scorer is not trained and questions keep the
    order they were generated in (breadth first)."""
    scorer: TrainingArgs = field(default_factory=_scorer_training_defaults)
    """How the scorer (LM + LoRA + value head, sigmoid) is trained on the pairs."""
    scorer_batch_size: int = 16
    """Questions scored per forward pass."""

    # -- ranking and dedup --------------------------------------------------------------------
    rouge_threshold: float = 0.7
    """A question is dropped when its ROUGE-L F with an already kept question of its chunk exceeds this."""
    rouge_tokenizer: str = "words"
    """Tokens of that ROUGE-L. "words": lower-cased words, each CJK character a token (ours, no dependency).
    "jieba": the paper's (`rouge_chinese` on `jieba.lcut` words, case and punctuation kept); needs the
    `jieba` package, and is refused where it is not installed."""

    # -- answers ------------------------------------------------------------------------------
    answer_temperature: float = 0.0
    """Sampling temperature of the answers (bootstrapped demonstrations and the final answers). The paper's
    DSPy `ChainOfThought` runs at DSPy's default, temperature 0.0 (greedy)."""
    answer_max_tokens: int = 384
    """New tokens per answer (reasoning, then the answer)."""
    judge_temperature: float = 0.2
    """Sampling temperature of the yes/no self-judging: the paper's `get_response` judge (its config's
    `a_temperature = 0.2`)."""
    judge_max_tokens: int = 16
    """New tokens of a yes/no judgement."""
    max_bootstrapped_demos: int = 3
    """Demonstrations made of the model's own answers to few-shot questions that it judged right."""
    max_labeled_demos: int = 3
    """Demonstrations in all: the bootstrapped ones, filled up with plain few-shot examples."""

    # -- execution ----------------------------------------------------------------------------
    batch_size: int = 16
    """Prompts sent to the model per call."""
    seed: int = 42
    """Fixes sampling, the negatives' sample and the scorer's training, so a rerun draws the same."""

    def __post_init__(self) -> None:
        # Every limit lives here, so a config from the form, a dict or YAML is refused past the same bounds.
        _between("max_length", self.max_length, 2, MAX_CHARACTERS)
        _between("min_length", self.min_length, 1, MAX_CHARACTERS)
        if self.min_length >= self.max_length:
            raise InvalidConfigError(f"min_length ({self.min_length}) must be below max_length ({self.max_length})", field="min_length")
        _between("character_per_piece", self.character_per_piece, 1, MAX_CHARACTERS)
        _between("min_paragraph_length", self.min_paragraph_length, 0, MAX_CHARACTERS)
        _number_between("length_scale", self.length_scale, 0.1, 20)
        _between("max_chunks_per_document", self.max_chunks_per_document, 0, 1_000_000)
        _number_between("over_generation", self.over_generation, 1.0, 10)
        _between("max_attempts", self.max_attempts, 1, 20)
        _between("min_question_length", self.min_question_length, 0, 10_000)
        _between("max_rounds_per_chunk", self.max_rounds_per_chunk, 1, 1000)
        _number_between("question_temperature", self.question_temperature, 0, 2)
        _number_between("question_top_p", self.question_top_p, 0, 1)
        if self.question_top_p == 0:
            raise InvalidConfigError("question_top_p must be in (0, 1], got 0", field="question_top_p")
        _between("question_max_tokens", self.question_max_tokens, 8, 32768)
        _between("cst_demonstrations", self.cst_demonstrations, 0, 10)
        if not isinstance(self.constrained_output, bool):
            raise InvalidConfigError(
                f"constrained_output must be true or false, got {self.constrained_output!r}", field="constrained_output"
            )
        _number_between("min_split_grounding", self.min_split_grounding, 0, 1)
        _between("negatives_per_variant", self.negatives_per_variant, 0, 100_000)
        _between("min_scorer_pairs", self.min_scorer_pairs, 1, 1_000_000)
        if not isinstance(self.scorer, TrainingArgs):
            raise InvalidConfigError("scorer must be a JSON object of training fields", field="scorer")
        _between("scorer_batch_size", self.scorer_batch_size, 1, 4096)
        _number_between("rouge_threshold", self.rouge_threshold, 0, 1)
        if self.rouge_threshold == 0:
            raise InvalidConfigError("rouge_threshold must be in (0, 1], got 0", field="rouge_threshold")
        if self.rouge_tokenizer not in ROUGE_TOKENIZERS:
            raise InvalidConfigError(
                f"rouge_tokenizer must be one of {', '.join(ROUGE_TOKENIZERS)}, got {self.rouge_tokenizer!r}",
                field="rouge_tokenizer",
            )
        if self.rouge_tokenizer == "jieba":
            check_jieba_available()
        _number_between("answer_temperature", self.answer_temperature, 0, 2)
        _number_between("judge_temperature", self.judge_temperature, 0, 2)
        _between("answer_max_tokens", self.answer_max_tokens, 1, 32768)
        _between("judge_max_tokens", self.judge_max_tokens, 1, 4096)
        _between("max_bootstrapped_demos", self.max_bootstrapped_demos, 0, 20)
        _between("max_labeled_demos", self.max_labeled_demos, 0, 20)
        _between("batch_size", self.batch_size, 1, 4096)
        _between("seed", self.seed, 0, MAX_SEED)

    # -- thresholds in characters, after length_scale ------------------------------------------

    @property
    def chunk_characters(self) -> int:
        return max(2, round(self.max_length * self.length_scale))

    @property
    def leaf_characters(self) -> int:
        return max(1, round(self.min_length * self.length_scale))

    @property
    def characters_per_question(self) -> int:
        return max(1, round(self.character_per_piece * self.length_scale))

    @property
    def paragraph_characters(self) -> int:
        return round(self.min_paragraph_length * self.length_scale)

    def gen_count(self, context: str) -> int:
        """Questions to keep for a root chunk: one per `character_per_piece` characters (AugCon's gen_count)."""
        return len(context) // self.characters_per_question

    def question_target(self, context: str) -> int:
        """Questions to generate for a root chunk before ranking: gen_count x over_generation, rounded up."""
        return math.ceil(self.gen_count(context) * self.over_generation - 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugConConfig:
        values = known_fields(cls, data, "AugCon config")
        # A config stored before grammars and grounding existed parsed free text and kept every split:
        # a resumed run goes on as it started (a new run's config always names both).
        values.setdefault("constrained_output", False)
        values.setdefault("min_split_grounding", 0.0)
        if isinstance(values.get("scorer"), dict):
            values["scorer"] = TrainingArgs.from_dict(values["scorer"])
        try:
            return cls(**values)
        except TypeError as error:
            raise InvalidConfigError(f"AugCon config: {error}") from error


def _at_least(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InvalidConfigError(f"{name} must be an integer of at least {low}, got {value!r}", field=name)


def _between(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidConfigError(f"{name} must be an integer between {low} and {high}, got {value!r}", field=name)


def _number_between(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidConfigError(f"{name} must be a number between {low} and {high}, got {value!r}", field=name)


def tiny_cpu_preset(config: AugConConfig) -> AugConConfig:
    """Minutes on a 2-core CPU with the 135M model: English scaling, short calls, few rounds, a few scorer steps."""
    scorer = TrainingArgs.from_dict(
        {
            **config.scorer.to_dict(),
            "max_steps": 8,
            "save_steps": 4,
            "learning_rate": 1e-4,
            "max_length": 256,
            "max_prompt_length": 224,
            "gradient_checkpointing": True,
            "device": "cpu",
            "dtype": "float32",
            "lora": {"r": 8, "alpha": 8, "dropout": 0.05, "target_modules": "all-linear"},
            "trainer_overrides": {"warmup_steps": 2},
        }
    )
    return replace(
        config,
        length_scale=3.0,
        max_chunks_per_document=2,
        max_rounds_per_chunk=2,
        question_max_tokens=192,
        answer_max_tokens=128,
        negatives_per_variant=8,
        scorer=scorer,
    )


AUGCON_PRESETS: list[Preset[AugConConfig]] = [
    Preset(
        name="tiny-cpu-demo",
        description="English length scale x3, 2 chunks per document, 2 trees per chunk, 192-token splits, "
        "8 scorer steps on CPU: a demo that finishes in minutes with the bundled 135M model.",
        apply=tiny_cpu_preset,
    ),
]
