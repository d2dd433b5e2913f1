"""SQLAlchemy 2 declarative models. Import from here so Alembic sees every table."""

from models.api_file import ApiFile, ApiFilePurpose
from models.api_key import ApiKey
from models.base import Base
from models.gallery import GenerationImage
from models.generation import ACTIVE, UNFINISHED, Generation, GenerationStatus, JobKind
from models.lease import Lease
from models.original import OriginalImage
from models.payment import Payment, PaymentStatus
from models.preferences import UserPreferences
from models.usage import DailyUsage
from models.user import User

__all__ = [
    "ACTIVE",
    "UNFINISHED",
    "ApiFile",
    "ApiFilePurpose",
    "ApiKey",
    "Base",
    "DailyUsage",
    "Generation",
    "GenerationImage",
    "GenerationStatus",
    "JobKind",
    "Lease",
    "OriginalImage",
    "Payment",
    "PaymentStatus",
    "User",
    "UserPreferences",
]
