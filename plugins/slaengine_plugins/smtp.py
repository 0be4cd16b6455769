"""E-mail notifier: escalation actions as plain-text mail over SMTP.

Configuration (``plugins.smtp``); without ``host`` the plugin does nothing::

    host: mail.example.com
    port: 587
    starttls: true                   # refuse to send unless the server upgrades to TLS
    username: sla-bot                # with password_env: log in
    password_env: SLA_SMTP_PASSWORD
    sender: sla@example.com
    recipients:                      # notify target (params.to) -> addresses
      duty-manager: [duty@example.com]
      support-director: director@example.com
    actions: [notify]
    timeout: 5                       # and retries, backoff, dead_letter as for webhooks

An action goes to the addresses of its ``params.to`` target plus those in
``params.email`` (one address or a list); an action with neither is not for
this plugin. The subject reads ``[SLA] INC-1001 resolution at 75%: notify
duty-manager``. ``Message-ID`` is derived from the idempotency key, which is
also sent as ``X-Idempotency-Key``, so a re-sent notice is recognisably the
same message.

Connection errors, timeouts and 4xx replies are retried; 5xx replies are
final (see :mod:`slaengine_plugins.delivery`).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from pydantic import field_validator

from slaengine.escalation import Action, EscalationContext
from slaengine.hookspecs import hookimpl
from slaengine_plugins.delivery import DeliveryConfig, DeliveryError, from_env

log = logging.getLogger(__name__)


class SmtpConfig(DeliveryConfig):
    """The ``plugins.smtp`` settings."""

    host: str | None = None
    port: int = 25
    sender: str | None = None
    recipients: dict[str, list[str]] = {}
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    actions: tuple[str, ...] = ("notify",)

    @field_validator("recipients", mode="before")
    @classmethod
    def _listed(cls, recipients: Any) -> Any:
        if isinstance(recipients, Mapping):
            return {k: [v] if isinstance(v, str) else v for k, v in recipients.items()}
        return recipients


class SmtpNotifier:
    """Mails escalation actions to the people their targets name."""

    def __init__(self) -> None:
        self.config = SmtpConfig()
        self._password: str | None = None

    @hookimpl
    def slaengine_configure(self, config: Mapping[str, Any]) -> None:
        """Read the settings; a host needs a sender, a username needs a password."""
        settings = SmtpConfig.model_validate(config)
        if settings.host is not None and not settings.sender:
            raise ValueError("a host needs a sender address")
        if (settings.username is None) != (settings.password_env is None):
            raise ValueError("give username and password_env together")
        password = None if settings.password_env is None else from_env(settings.password_env)
        self.config, self._password = settings, password

    @hookimpl
    def slaengine_escalation_actions(self) -> tuple[str, ...]:
        """The configured action types; none without a host."""
        return self.config.actions if self.config.host is not None else ()

    @hookimpl
    def slaengine_escalate(self, context: EscalationContext, action: Action) -> bool | None:
        """Mail the action; True once the server accepted it, None when not ours."""
        if self.config.host is None or action.type not in self.config.actions:
            return None
        addresses = self._addresses(action)
        if not addresses:
            log.warning("smtp: no addresses for %s (params %s)", action.type, action.params)
            return None
        message = notice(context, action, str(self.config.sender), addresses)
        record = {
            "plugin": "smtp",
            "server": f"{self.config.host}:{self.config.port}",
            "to": addresses,
            "subject": message["Subject"],
            "body": message.get_content(),
            "idempotency_key": context.idempotency_key,
        }
        self.config.deliver(lambda: self._send(message), record)
        return True

    def _addresses(self, action: Action) -> list[str]:
        target = action.params.get("to")
        addresses = list(self.config.recipients.get(str(target), [])) if target else []
        extra = action.params.get("email") or []
        addresses += [extra] if isinstance(extra, str) else list(extra)
        return list(dict.fromkeys(addresses))

    def _send(self, message: EmailMessage) -> None:
        settings = self.config
        where = f"SMTP {settings.host}:{settings.port}"
        try:
            with smtplib.SMTP(str(settings.host), settings.port, timeout=settings.timeout) as smtp:
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.username is not None:
                    smtp.login(settings.username, self._password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"{where}: every recipient refused: {exc.recipients}",
                transient=all(400 <= code < 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            reply = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else exc.smtp_error
            )
            raise DeliveryError(
                f"{where}: {exc.smtp_code} {reply}",
                transient=400 <= exc.smtp_code < 500,
                status=exc.smtp_code,
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise DeliveryError(f"{where}: disconnected: {exc}", transient=True) from exc
        except smtplib.SMTPException as exc:  # e.g. STARTTLS or AUTH not offered
            raise DeliveryError(f"{where}: {exc}") from exc
        except OSError as exc:  # refused, unreachable, timed out
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}", transient=True) from exc
        if refused:
            log.warning("smtp: %s refused %s", where, refused)


def notice(
    context: EscalationContext, action: Action, sender: str, addresses: list[str]
) -> EmailMessage:
    """The e-mail for one escalation action."""
    key = context.idempotency_key
    summary = describe(action)
    message = EmailMessage()
    message["Subject"] = (
        f"[SLA] {context.ticket_id} {context.metric} at {context.threshold}: {summary}"
    )
    message["From"] = sender
    message["To"] = ", ".join(addresses)
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "slaengine"
    message["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
    message["X-Idempotency-Key"] = key
    facts = [
        ("Ticket", context.ticket_id),
        ("Metric", f"{context.metric} (cycle {context.cycle})"),
        ("Threshold", f"{context.threshold}, reached {context.instant.isoformat()}"),
        ("Due at", context.due_at.isoformat() if context.due_at else "-"),
        ("Priority", context.priority or "-"),
        ("Plan", context.plan),
        ("Ruleset", context.ruleset),
        ("Action", summary),
        ("Key", key),
    ]
    lines = [
        f"Ticket {context.ticket_id}: its {context.metric} clock reached {context.threshold} "
        f"of its target.",
        "",
        *(f"{name + ':':<11}{value}" for name, value in facts),
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def describe(action: Action) -> str:
    """``notify duty-manager``, ``raise_level L3``, ``reassign senior-engineers``..."""
    for name in ("to", "group", "level"):
        if name in action.params:
            return f"{action.type} {action.params[name]}"
    return action.type
