"""Training as a process group: one rank entry point (`rank.py`) that every launcher runs, the job it reads
(`job.py`), the events rank 0 writes for the supervising worker (`events.py`), and the launchers
(`launch.py`: torchrun on this host; `ray_launch.py`: Ray Train across hosts).

The ranks run the same trainers as an in-process run (`pipelines.training.sft`, `preference`, `reward`);
HF Trainer and accelerate pick the process group up from the environment the launcher sets. Importing
this package is light: torch loads in the ranks only.
"""
