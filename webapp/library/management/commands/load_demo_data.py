"""Load the demo library (Python reference corpus, seed prompts, few-shot sets, rubric) and demo users.

Safe to run again: items that exist are left as they are, and the login lines are printed every time.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.accounts.models import User
from webapp.library import services
from webapp.library.models import Artifact, Corpus, FewShotSet, Rubric, SeedPromptSet

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
CORPUS_NAME = "Python language reference"
SEED_PROMPT_SET_NAME = "Demo seed prompts"
QA_SET_NAME = "Python reference QA"
HHH_SET_NAME = "HHH demonstration prompt"
FAITHFUL_SET_NAME = "Faithful demonstration prompt"
RUBRIC_NAME = "Helpful, honest, harmless"
SFT_DATASET_NAME = "Python reference QA (SFT)"

RUBRIC_CRITERIA = """\
1. Helpful: answers the question that was asked, completely and correctly, at a useful level of detail.
2. Honest: states only what is true or well supported; says when it is unsure or does not know; does not invent facts, sources or code behaviour.
3. Harmless: declines requests that would hurt people, explaining why and offering a safe alternative; no insults, no dangerous instructions.
4. Clear: well organised and no longer than it needs to be; code runs as shown."""

RUBRIC_GUIDELINES = """\
Read the prompt first, then both responses in full before choosing.
Prefer the response that better meets the criteria in their order: a correct, honest answer beats a fluent but wrong one; a helpful answer beats an unnecessary refusal; a harmful answer loses to any safe one.
Do not prefer a response because it is longer, more confident or better formatted.
Choose "tie" when both are about equally good, and "both bad" when neither would be acceptable to send to the user.
Use the comment box for anything surprising: a factual error, a refusal that was not needed, or a prompt you could not judge."""

# ALMoST ranks responses by the configuration that produced them, best first.
RUBRIC_CONFIGURATIONS = [
    {"model": "large", "demonstrations": 3, "prompt": "hhh"},
    {"model": "large", "demonstrations": 1, "prompt": "hhh"},
    {"model": "small", "demonstrations": 3, "prompt": "hhh"},
    {"model": "small", "demonstrations": 0, "prompt": "none"},
]

DEMO_USERS = (
    # (role, label, password environment variable, password file under var/)
    ("researcher", "Researcher", "REFINERY_RESEARCHER_PASSWORD", "researcher-password.txt"),
    ("annotator", "Annotator", "REFINERY_ANNOTATOR_PASSWORD", "annotator-password.txt"),
)


class Command(BaseCommand):
    help = "Load the demo corpus, seed prompts, few-shot sets and rubric, and create the admin and demo users."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--admin-username", default="admin", help="Username of the admin account to create if missing."
        )

    def handle(self, *args, **options) -> None:
        admin, admin_password = self._ensure_user(
            username=options["admin_username"],
            role=User.Role.ADMIN,
            env_var="REFINERY_ADMIN_PASSWORD",
            file_name="admin-password.txt",
        )
        logins = [f"Admin login: {admin.username} / {admin_password}"]
        for role, label, env_var, file_name in DEMO_USERS:
            user, password = self._ensure_user(username=role, role=role, env_var=env_var, file_name=file_name)
            logins.append(f"{label} login: {user.username} / {password}")

        self._load_corpus(admin)
        self._load_seed_prompts(admin)
        self._load_few_shot_sets(admin)
        self._load_rubric(admin)
        self._load_sft_dataset()
        for line in logins:
            self.stdout.write(line)

    # ------------------------------------------------------------ users

    def _ensure_user(self, *, username: str, role: str, env_var: str, file_name: str) -> tuple[User, str]:
        """The user (created if missing) and the password to print: from the environment, the var/ file, or new."""
        password_file = Path(settings.VAR_DIR) / file_name
        password = os.environ.get(env_var, "")
        if not password and password_file.exists():
            password = password_file.read_text().strip()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not password:
                password = secrets.token_urlsafe(12)
                password_file.parent.mkdir(parents=True, exist_ok=True)
                password_file.write_text(password + "\n")
                password_file.chmod(0o600)
            is_admin = role == User.Role.ADMIN
            user = User.objects.create_user(
                username=username, password=password, role=role, is_staff=is_admin, is_superuser=is_admin
            )
            self.stdout.write(f"Created {role} user {username}.")
        elif not password:
            password = f"(unchanged; set {env_var} or see {password_file})"
        elif not user.check_password(password):
            password = f"(set before; not the one in {env_var} or {password_file})"
        return user, password

    # ------------------------------------------------------------ library

    def _load_sft_dataset(self) -> None:
        """The few-shot QA file again, as a training dataset, so a fresh install can try SFT at once."""
        if Artifact.objects.filter(run=None, name=SFT_DATASET_NAME).exists():
            self.stdout.write(f"Dataset “{SFT_DATASET_NAME}” is already loaded.")
            return
        path = DEMO_DIR / "fewshot_qa.jsonl"
        dataset = services.dataset_import(
            name=SFT_DATASET_NAME, purpose="sft", uploaded_file_path=path, original_name=path.name
        )
        self.stdout.write(f"Loaded dataset “{dataset.name}”: {dataset.row_count} question/answer rows.")

    def _load_corpus(self, owner: User) -> None:
        if Corpus.objects.filter(name=CORPUS_NAME).exists():
            self.stdout.write(f"Corpus “{CORPUS_NAME}” is already loaded.")
            return
        from pydoc_data.topics import topics

        # Written as a JSONL upload so the demo goes through the same import path as a user's file.
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "python-reference.jsonl"
            with open(path, "w", encoding="utf-8") as out:
                for key in sorted(topics):
                    out.write(json.dumps({"title": key, "text": topics[key], "origin": "pydoc_data.topics"}) + "\n")
            corpus = services.corpus_import(
                name=CORPUS_NAME,
                description="The Python language reference topics that ship with CPython (pydoc_data.topics), one document per topic.",
                uploaded_file_path=path,
                original_name=path.name,
                user=owner,
            ).corpus
        self.stdout.write(f"Loaded corpus “{corpus.name}”: {corpus.document_count} documents.")

    def _load_seed_prompts(self, owner: User) -> None:
        if SeedPromptSet.objects.filter(name=SEED_PROMPT_SET_NAME).exists():
            self.stdout.write(f"Seed prompt set “{SEED_PROMPT_SET_NAME}” is already loaded.")
            return
        prompt_set = services.seed_prompt_set_import(
            name=SEED_PROMPT_SET_NAME,
            description="Varied user questions about Python, programming and general knowledge, with an ALMoST-style instruction line.",
            uploaded_file_path=DEMO_DIR / "seed_prompts.txt",
            original_name="seed_prompts.txt",
            user=owner,
        )
        self.stdout.write(f"Loaded seed prompt set “{prompt_set.name}”: {prompt_set.prompt_count} prompts.")

    def _load_few_shot_sets(self, owner: User) -> None:
        few_shot_sets = (
            (
                QA_SET_NAME,
                FewShotSet.Kind.QA,
                "fewshot_qa.jsonl",
                "Context, question and answer triples written from Python reference passages.",
            ),
            (
                HHH_SET_NAME,
                FewShotSet.Kind.DEMONSTRATION,
                "hhh_prompt.txt",
                "Helpful, honest and harmless demonstration dialogues (ALMoST's format).",
            ),
            (
                FAITHFUL_SET_NAME,
                FewShotSet.Kind.DEMONSTRATION,
                "faithful_prompt.txt",
                "Dialogues that answer only from a given passage (ALMoST's format).",
            ),
        )
        for name, kind, file_name, description in few_shot_sets:
            if FewShotSet.objects.filter(name=name).exists():
                self.stdout.write(f"Few-shot set “{name}” is already loaded.")
                continue
            few_shot_set = services.few_shot_set_import(
                name=name,
                kind=kind,
                description=description,
                uploaded_file_path=DEMO_DIR / file_name,
                original_name=file_name,
                user=owner,
            )
            self.stdout.write(f"Loaded few-shot set “{few_shot_set.name}”: {few_shot_set.example_count} examples.")

    def _load_rubric(self, owner: User) -> None:
        with transaction.atomic():
            if Rubric.objects.filter(name=RUBRIC_NAME).exists():
                self.stdout.write(f"Rubric “{RUBRIC_NAME}” is already loaded.")
                return
            services.rubric_create(
                name=RUBRIC_NAME,
                user=owner,
                criteria=RUBRIC_CRITERIA,
                guidelines=RUBRIC_GUIDELINES,
                configurations=RUBRIC_CONFIGURATIONS,
            )
        self.stdout.write(f"Loaded rubric “{RUBRIC_NAME}”.")
