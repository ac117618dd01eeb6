"""Issue #16 (identity): the audit log of admin actions, members' invitations, per-organisation SSO,
SCIM provisioning and second-factor policy. The audit log is append-only: on PostgreSQL a trigger
refuses UPDATE and DELETE even from raw SQL (the function comes from 0002_database_guards)."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

APPEND_ONLY_TABLES = ("contracts_auditentry",)


def guards_forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in APPEND_ONLY_TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION contracts_refuse_change();",
            params=None,
        )


def guards_backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in APPEND_ONLY_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0005_hardening"),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('api-key.create', 'API key created'), ('api-key.revoke', 'API key revoked'), ('webhook.create', 'Webhook added'), ('webhook.update', 'Webhook changed'), ('webhook.rotate-secret', 'Webhook secret rotated'), ('webhook.delete', 'Webhook removed'), ('contact.add', 'Contact added'), ('contact.remove', 'Contact removed'), ('calendar.regenerate', 'Calendar feed link regenerated'), ('calendar.revoke', 'Calendar feed link revoked'), ('member.invite', 'Member invited'), ('invitation.revoke', 'Invitation revoked'), ('invitation.accept', 'Invitation accepted'), ('member.role-change', 'Role changed'), ('member.remove', 'Member removed'), ('member.join-sso', 'Member joined through SSO'), ('sso.configure', 'SSO configured'), ('sso.policy', 'Sign-in policy changed'), ('scim-token.create', 'SCIM token created'), ('scim-token.revoke', 'SCIM token revoked'), ('scim.user-provision', 'User provisioned (SCIM)'), ('scim.user-update', 'User updated (SCIM)'), ('scim.user-deprovision', 'User deprovisioned (SCIM)'), ('scim.group-change', 'Group changed (SCIM)'), ('pin.policy-change', 'Pin upgrade policy changed'), ('export.request', 'Consent export requested'), ('extended-support.buy', 'Extended support bought'), ('admin.add', 'Staff added an object in /admin/'), ('admin.change', 'Staff changed an object in /admin/'), ('admin.delete', 'Staff deleted an object in /admin/')], max_length=40)),
                ('actor_kind', models.CharField(choices=[('user', 'User'), ('api-key', 'API key'), ('scim-token', 'SCIM token'), ('system', 'System')], max_length=16)),
                ('actor_label', models.CharField(help_text="The actor as it was then: e-mail, key prefix, SCIM token id or 'system'.", max_length=254)),
                ('target_type', models.CharField(max_length=40)),
                ('target_id', models.CharField(blank=True, max_length=64)),
                ('target_label', models.CharField(blank=True, max_length=300)),
                ('before', models.JSONField(blank=True, default=dict)),
                ('after', models.JSONField(blank=True, default=dict)),
                ('ip', models.GenericIPAddressField(blank=True, null=True)),
                ('user_agent', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(db_index=True)),
                ('actor_user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(blank=True, help_text='Empty for the vendor-side log (staff actions in /admin/).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='audit_entries', to='contracts.organization')),
            ],
            options={
                'verbose_name_plural': 'audit entries',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['organization', '-created_at'], name='audit_org_time'), models.Index(fields=['organization', 'action', '-created_at'], name='audit_org_action_time')],
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('actor_kind', 'user'), _negated=True), ('actor_user__isnull', False), _connector='OR'), name='audit_user_actor_named')],
            },
        ),
        migrations.CreateModel(
            name='Invitation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('email', models.EmailField(max_length=254)),
                ('role', models.CharField(choices=[('admin', 'Admin'), ('member', 'Member'), ('legal', 'Legal')], default='member', max_length=16)),
                ('token_hash', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField()),
                ('accepted_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('accepted_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('invited_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='contracts.organization')),
            ],
            options={
                'ordering': ['-created_at'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('accepted_at__isnull', True), ('revoked_at__isnull', True)), fields=('organization', 'email'), name='one_open_invitation_per_org_and_email'), models.CheckConstraint(condition=models.Q(('expires_at__gt', models.F('created_at'))), name='invitation_expires_later')],
            },
        ),
        migrations.CreateModel(
            name='IdentitySettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('sso_issuer', models.URLField(blank=True, max_length=300)),
                ('sso_client_id', models.CharField(blank=True, max_length=191)),
                ('sso_provider_id', models.SlugField(blank=True, max_length=80, null=True, unique=True)),
                ('sso_default_role', models.CharField(choices=[('admin', 'Admin'), ('member', 'Member'), ('legal', 'Legal')], default='member', max_length=16)),
                ('require_sso', models.BooleanField(default=False, help_text='Members (vendor staff excepted) may sign in only through the provider.')),
                ('require_mfa_for_admins', models.BooleanField(default=False, help_text='Admins must enrol and use a second factor (TOTP or a passkey).')),
                ('updated_at', models.DateTimeField(blank=True, null=True)),
                ('organization', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='identity', to='contracts.organization')),
            ],
            options={
                'verbose_name_plural': 'identity settings',
            },
        ),
        migrations.CreateModel(
            name='OrgDomain',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('domain', models.CharField(max_length=253, unique=True)),
                ('created_at', models.DateTimeField()),
                ('verified_at', models.DateTimeField(blank=True, null=True)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='domains', to='contracts.organization')),
            ],
            options={
                'ordering': ['domain'],
            },
        ),
        migrations.CreateModel(
            name='ScimToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('prefix', models.CharField(max_length=16, unique=True)),
                ('token_hash', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField()),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scim_tokens', to='contracts.organization')),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='ScimUser',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scim_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('external_id', models.CharField(blank=True, max_length=254)),
                ('active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scim_users', to='contracts.organization')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='scim_identities', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['created_at', 'pk'],
            },
        ),
        migrations.CreateModel(
            name='ScimGroup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scim_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('external_id', models.CharField(blank=True, max_length=254)),
                ('display_name', models.CharField(max_length=200)),
                ('role', models.CharField(blank=True, choices=[('admin', 'Admin'), ('member', 'Member'), ('legal', 'Legal')], help_text='Role its members get; empty: none.', max_length=16)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='scim_groups', to='contracts.organization')),
                ('members', models.ManyToManyField(blank=True, related_name='groups', to='contracts.scimuser')),
            ],
            options={
                'ordering': ['display_name'],
            },
        ),
        migrations.AddConstraint(
            model_name='scimuser',
            constraint=models.UniqueConstraint(fields=('organization', 'user'), name='one_scim_user_per_org'),
        ),
        migrations.AddConstraint(
            model_name='scimgroup',
            constraint=models.UniqueConstraint(fields=('organization', 'display_name'), name='one_scim_group_name_per_org'),
        ),
        migrations.RunPython(guards_forward, guards_backward),
    ]
