"""Streaming readers for library uploads, one module per kind of input (pure Python, no Django).

Every reader yields plain records that carry their provenance (file name, line or row) and raises one
`ImportProblem` at the first bad record, naming the file, the place and what is wrong.

- `reading`: what they share: `ImportProblem`, `ProgressCallback`, size and extension checks,
  decoding, NUL and JSON nesting checks, `jsonl_objects`.
- `corpus`: `read_corpus` (.jsonl, .txt, .zip, .parquet) and `DocumentRecord`, under `SizeLimits`.
- `prompts`: `read_seed_prompts` with `PromptRecord` and `InstructionRecord`.
- `fewshot`: `read_qa_examples` (`QAExampleRecord`) and `read_demonstration_prompt` (`DemonstrationRecord`).
- `datasets`: `read_training_rows` for SFT and preference datasets.
"""
