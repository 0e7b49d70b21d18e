"""The reconciliation rules: from two answers (or failures) to what the service does next."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from batch import RequestError
from jobs.api.models import Api, ConsentAnswer, MembershipAnswer, VirtualAccount


class Status(StrEnum):
    LINKED = "linked"
    NON_MEMBER = "non_member"
    NO_LINKED_ACCOUNT = "no_linked_account"
    ERROR = "error"


class NextAction(StrEnum):
    NONE = "none"
    PORTAL_SIGNUP = "portal_signup"  # send to the 금융투자 핀테크 포탈 sign-up
    LINK_ACCOUNT = "link_account"  # guide to issue a virtual account and link it
    RETRY = "retry"


NEXT_ACTION = {
    Status.LINKED: NextAction.NONE,
    Status.NON_MEMBER: NextAction.PORTAL_SIGNUP,
    Status.NO_LINKED_ACCOUNT: NextAction.LINK_ACCOUNT,
    Status.ERROR: NextAction.RETRY,
}


@dataclass(frozen=True, slots=True)
class Reconciled:
    """One customer's row of the reconciled dataset, less its identity and time."""

    membership: str | None
    linked_accounts: int | None
    status: Status
    error: str | None
    terms_expire_date: dt.date | None
    accounts: tuple[VirtualAccount, ...]

    @property
    def is_non_member(self) -> bool | None:
        return None if self.membership is None else self.membership == "nonMember"

    @property
    def no_linked_account(self) -> bool | None:
        return None if self.linked_accounts is None else self.linked_accounts == 0

    @property
    def next_action(self) -> NextAction:
        return NEXT_ACTION[self.status]

    @property
    def inconsistent(self) -> bool:
        """A non-member with linked accounts: kept as given, counted in the summary."""
        return self.membership == "nonMember" and bool(self.linked_accounts)


def reconcile(
    membership: MembershipAnswer | RequestError, consent: ConsentAnswer | RequestError
) -> Reconciled:
    """Status is the first that applies of error, non_member, no_linked_account; else linked."""
    known_membership = membership if isinstance(membership, MembershipAnswer) else None
    known_consent = consent if isinstance(consent, ConsentAnswer) else None
    accounts = known_consent.accounts if known_consent else ()
    linked = len(accounts) if known_consent else None
    errors = []
    if isinstance(membership, RequestError):
        errors.append(f"{Api.REGISTER.value}: {membership.reason}")
    # A non-member is a valid answer whatever consent/search said.
    non_member = known_membership is not None and not known_membership.is_member
    if isinstance(consent, RequestError) and not non_member:
        errors.append(f"{Api.CONSENT.value}: {consent.reason}")
    if errors:
        status = Status.ERROR
    elif non_member:
        status = Status.NON_MEMBER
    elif linked == 0:
        status = Status.NO_LINKED_ACCOUNT
    else:
        status = Status.LINKED
    return Reconciled(
        membership=known_membership.result if known_membership else None,
        linked_accounts=linked,
        status=status,
        error="; ".join(errors) or None,
        terms_expire_date=known_membership.terms_expire_date if known_membership else None,
        accounts=accounts,
    )
