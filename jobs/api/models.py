"""What is sent to and answered by KOSCOM's service-integration API, as typed values."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Api(StrEnum):
    """The two questions asked about every customer, named by their path."""

    REGISTER = "register/search"
    CONSENT = "consent/search"


@dataclass(frozen=True, slots=True)
class Customer:
    """One distinct, valid customer from the input, with the input columns kept for outputs."""

    ci: str
    kor_name: str
    kept: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class MembershipAnswer:
    """register/search: is the customer a member of the 금융투자 핀테크 포탈."""

    result: str  # "member" | "nonMember"
    terms_expire_date: dt.date | None = None

    @property
    def is_member(self) -> bool:
        return self.result == "member"


@dataclass(frozen=True, slots=True)
class VirtualAccount:
    """One virtual account the customer linked to our service."""

    com_id: str
    vt_acc_no: str
    vt_acc_alias: str | None


@dataclass(frozen=True, slots=True)
class ConsentAnswer:
    """consent/search: the accounts linked to our service (none when the platform knows no user)."""

    accounts: tuple[VirtualAccount, ...]
    terms_expire_date: dt.date | None = None
    platform_code: str | None = (
        None  # set when the answer came as "not found user" / "CI Not Found"
    )


@dataclass(frozen=True, slots=True)
class Partner:
    """The fintech company and service the key belongs to."""

    com_id: str
    srv_id: str


def envelope(partner: Partner, customer: Customer, request_id: str) -> dict[str, object]:
    """The request body both APIs take."""
    return {
        "partner": {"comId": partner.com_id, "srvId": partner.srv_id},
        "commonHeader": {"reqIdPlatform": "", "reqIdConsumer": request_id, "ci": customer.ci},
        "body": {"korName": customer.kor_name},
    }
