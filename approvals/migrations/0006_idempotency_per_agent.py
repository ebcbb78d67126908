# Idempotency keys become each agent's own: unique per (agent, key) instead of per (tenant, key), so another
# agent of the tenant that sends the same key no longer replays (and reads back) the first agent's proposal.
# Every (tenant, key) pair was unique, so every (agent, key) pair is: the new constraint always holds. It is
# added before the old one goes, so no moment is left without one.
#
# submitted_args_hash: the hash of the args as submitted, kept when a reviewer's edit changes args_hash, so
# that the agent's retry of its own submission is answered as a replay. Empty on earlier rows (their
# args_hash stands in): no rewrite of the table.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0005_list_indexes_webhook_next_attempt"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="proposal",
            constraint=models.UniqueConstraint(
                fields=("agent", "idempotency_key"), name="proposal_agent_idempotency_key_unique"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="proposal",
            name="proposal_idempotency_key_unique",
        ),
        migrations.AddField(
            model_name="proposal",
            name="submitted_args_hash",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
    ]
