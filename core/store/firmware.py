"""SQL firmware library: metadata rows plus image bytes in a side table."""

from __future__ import annotations

import builtins
import hashlib

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.errors import NotFound, ValidationError
from core.model import Firmware, SemVer
from core.model.firmware import parse_firmware_id
from core.ports.firmware import FirmwareRepository
from core.store.schema import FirmwareImageRow, FirmwareRow, table_of

_firmware = table_of(FirmwareRow)


def _release(version: SemVer) -> str:
    """The version without build metadata: what SemVer precedence compares."""
    return str(SemVer(version.major, version.minor, version.patch, version.prerelease))


class SqlFirmwareRepository(FirmwareRepository):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, firmware: Firmware, image: bytes) -> None:
        """Size and digest are checked against the bytes here, because a
        mismatch found later would be found by a device mid-update."""
        if len(image) != firmware.size:
            raise ValidationError(
                f"firmware {firmware.firmware_id}: image is {len(image)} bytes "
                f"but the metadata says {firmware.size}"
            )
        digest = hashlib.sha256(image).hexdigest()
        if digest != firmware.sha256:
            raise ValidationError(
                f"firmware {firmware.firmware_id}: image SHA-256 is {digest}, "
                f"the metadata says {firmware.sha256}"
            )
        row = FirmwareRow(
            firmware_id=firmware.firmware_id,
            device_type=firmware.device_type,
            version=_release(firmware.version),
            build=".".join(firmware.version.build),
            size=firmware.size,
            sha256=firmware.sha256,
            signature=firmware.signature,
            signing_key_id=firmware.key_id,
            release_notes=firmware.release_notes,
            created_at=firmware.created_at,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
                session.flush()
                session.add(FirmwareImageRow(firmware_id=row.firmware_id, data=image))
        except IntegrityError:
            raise ValidationError(
                f"firmware {_release(firmware.version)} for {firmware.device_type} is already "
                "in the library; publish a new version instead of replacing an image"
            ) from None

    def get_by_id(self, firmware_id: str) -> Firmware:
        device_type, version = parse_firmware_id(firmware_id)
        return self.get(device_type, version)

    def get(self, device_type: str, version: SemVer) -> Firmware:
        with self._sessions() as session:
            return _to_domain(self._row(session, device_type, version))

    def list(self, device_type: str | None = None) -> builtins.list[Firmware]:
        """Ordered by device type, then SemVer precedence (oldest first); the
        database cannot sort pre-releases correctly, Python can."""
        stmt = select(FirmwareRow)
        if device_type is not None:
            stmt = stmt.where(FirmwareRow.device_type == device_type)
        with self._sessions() as session:
            found = [_to_domain(row) for row in session.scalars(stmt)]
        return sorted(found, key=lambda f: (f.device_type, f.version))

    def read_image(self, device_type: str, version: SemVer) -> bytes:
        with self._sessions() as session:
            row = self._row(session, device_type, version)
            data = session.scalar(
                select(FirmwareImageRow.data).where(FirmwareImageRow.firmware_id == row.firmware_id)
            )
            if data is None:
                raise NotFound(f"firmware {row.firmware_id} has no stored image")
            return bytes(data)

    def delete(self, device_type: str, version: SemVer) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(_firmware).where(
                    _firmware.c.device_type == device_type,
                    _firmware.c.version == _release(version),
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no firmware {version} for device type {device_type!r}")

    @staticmethod
    def _row(session: Session, device_type: str, version: SemVer) -> FirmwareRow:
        row = session.scalar(
            select(FirmwareRow).where(
                FirmwareRow.device_type == device_type, FirmwareRow.version == _release(version)
            )
        )
        if row is None:
            raise NotFound(f"no firmware {version} for device type {device_type!r}")
        return row


def _to_domain(row: FirmwareRow) -> Firmware:
    text = row.version + (f"+{row.build}" if row.build else "")
    return Firmware(
        version=SemVer.parse(text),
        device_type=row.device_type,
        size=row.size,
        sha256=row.sha256,
        signature=None if row.signature is None else bytes(row.signature),
        key_id=row.signing_key_id or "",
        release_notes=row.release_notes,
        created_at=row.created_at,
    )
