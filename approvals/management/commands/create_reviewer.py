from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import IntegrityError

from approvals.accounts import person_create, user_token_create
from approvals.models import Membership, ReviewerGroup, Role, Tenant


class Command(BaseCommand):
    help = "Create a reviewer in a tenant; prints an API token alone on the last line (stored hashed)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", default=None)
        parser.add_argument("--role", default=Role.REVIEWER, choices=[Role.REVIEWER, Role.ADMIN])
        parser.add_argument(
            "--email", default=None, help="where they get new proposals, reminders and escalations"
        )
        parser.add_argument(
            "--slack-user-id",
            default=None,
            help="their Slack user id (U...): their clicks in Slack decide as them",
        )
        parser.add_argument(
            "--group",
            default=None,
            help="a reviewer group of the tenant to add them to (created if missing): "
            "a rule routed to it lets only its members decide",
        )

    def handle(self, *args, tenant, username, password, role, **options):
        try:
            tenant_obj = Tenant.objects.get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant {tenant!r}; create it with create_tenant") from None
        user = person_create(tenant=tenant_obj, username=username, role=role, password=password)
        slack_user_id = options.get("slack_user_id")
        if slack_user_id is not None:
            try:
                Membership.objects.filter(user=user, tenant=tenant_obj).update(
                    slack_user_id=slack_user_id.strip()
                )
            except IntegrityError:
                raise CommandError(
                    f"Slack user {slack_user_id!r} is already another reviewer of {tenant}"
                ) from None
        email = options.get("email")
        if email is not None:
            try:
                validate_email(email.strip())
            except ValidationError:
                raise CommandError(f"not an email address: {email!r}") from None
            user.email = email.strip()
            user.save(update_fields=["email"])
        group_name = (options.get("group") or "").strip()
        if options.get("group") is not None:
            if not group_name or len(group_name) > 64:
                raise CommandError(f"not a group name: {options['group']!r}")
            group, _ = ReviewerGroup.objects.get_or_create(tenant=tenant_obj, name=group_name)
            group.members.add(user)
        token = user_token_create(user=user)
        in_group = f" (group {group_name})" if group_name else ""
        self.stdout.write(f"{role} {user.get_username()} in {tenant_obj.slug}{in_group}")
        self.stdout.write(token)
