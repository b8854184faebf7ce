"""Models default to dtype auto; the bundled model, registered with the old float32 default, moves to auto."""

from django.db import migrations, models


def bundled_model_to_auto(apps, schema_editor):
    ModelEntry = apps.get_model("registry", "ModelEntry")
    ModelEntry.objects.filter(source="embedded", dtype="float32").update(dtype="auto")


def bundled_model_to_float32(apps, schema_editor):
    ModelEntry = apps.get_model("registry", "ModelEntry")
    ModelEntry.objects.filter(source="embedded", dtype="auto").update(dtype="float32")


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0004_model_reward_model"),
    ]

    operations = [
        migrations.AlterField(
            model_name="modelentry",
            name="dtype",
            field=models.CharField(
                default="auto",
                help_text="auto: bfloat16 on a CPU with bfloat16 kernels where the model passes the KL check "
                "(pipelines/llm/cpu_dtype.py), else float32; the GPU's own choice on CUDA. Or float32, bfloat16, float16.",
                max_length=20,
            ),
        ),
        migrations.RunPython(bundled_model_to_auto, bundled_model_to_float32),
    ]
