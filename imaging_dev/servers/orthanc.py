"""Orthanc with its DICOMweb plugin: a real DICOMweb server (STOW-RS, WADO-RS, QIDO-RS).

Stands in for the Cloud Healthcare DICOM store in tests and in `imaging demo`. It is not a test
double but another implementation of the same protocol, so DICOMweb code that works here speaks
standard DICOMweb. Uses Debian's /usr/sbin/Orthanc and the orthanc-dicomweb plugin, configured
from a JSON file in the server's own temp dir: loopback only, no auth, DICOM port disabled.

Known differences from Google's DICOM store: Debian's Orthanc cannot transcode JPEG 2000 (asking
WADO-RS for an uncompressed transfer syntax answers 500 "Cannot transcode image"; asking for the
stored syntax, `transfer-syntax=*`, works), re-storing an existing instance overwrites it
(`OverwriteInstances`).

Store notifications: given `notification_url` (a Pub/Sub REST publish URL, e.g.
`PubSubEmulator.publish_url(topic)`), a Lua hook publishes for every stored instance what the
Cloud Healthcare API publishes: data = `STORE/dicomWeb/studies/X/series/Y/instances/Z`,
attributes `action=StoreInstances`, `storeName`, the three UIDs and `modality` (what the
store's `notification_configs` messages carry). As in the cloud, a notification that cannot
be published is lost (Orthanc logs the error); backfill is the way to recover.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import requests

from imaging_dev.servers._base import (
    LOOPBACK,
    ServerStartError,
    SubprocessServer,
    free_port,
    log_tail,
)

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
_PORT_IN_USE = "already in use"
DEFAULT_STORE = "projects/local/locations/local/datasets/local/dicomStores/orthanc"
_STORE_NAME = re.compile(
    r"^projects/[\w.-]+/locations/[\w.-]+/datasets/[\w.-]+/dicomStores/[\w.-]+$"
)

# Lua 5.x without bit operators, so that it runs with whichever Lua Orthanc was built against.
_NOTIFY_LUA = """
local URL, STORE = %(url)s, %(store)s
local ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for j = 3, 0, -1 do
      local index = math.floor(n / 64 ^ j) %% 64 + 1
      chars[#chars + 1] = ALPHABET:sub(index, index)
    end
    if not b then chars[3], chars[4] = '=', '=' elseif not c then chars[4] = '=' end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

function OnStoredInstance(instanceId, tags, metadata, origin)
  local path = STORE .. '/dicomWeb/studies/' .. tags['StudyInstanceUID'] .. '/series/' ..
    tags['SeriesInstanceUID'] .. '/instances/' .. tags['SOPInstanceUID']
  -- The attributes of the store's notification_configs messages (UIDs and CS values only,
  -- nothing to escape); `modality` is what the subscription filter and the processor read.
  local attributes = '{"action":"StoreInstances","storeName":"' .. STORE .. '"' ..
    ',"studyInstanceUID":"' .. tags['StudyInstanceUID'] .. '"' ..
    ',"seriesInstanceUID":"' .. tags['SeriesInstanceUID'] .. '"' ..
    ',"sopInstanceUID":"' .. tags['SOPInstanceUID'] .. '"'
  if tags['Modality'] and tags['Modality'] ~= '' then
    attributes = attributes .. ',"modality":"' .. tags['Modality'] .. '"'
  end
  local body = '{"messages":[{"data":"' .. base64(path) .. '","attributes":' ..
    attributes .. '}}]}'
  HttpPost(URL, body, {['Content-Type'] = 'application/json'})
end
"""
_PORT_ATTEMPTS = 3


class OrthancServer(SubprocessServer):
    """`with OrthancServer() as o: DICOMwebClient(url=o.dicomweb_url)`."""

    name = "orthanc"
    orphan_watch = True  # Orthanc has no way of its own to notice that we died

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        binary: str = ORTHANC_BINARY,
        plugin: Path = DICOMWEB_PLUGIN,
        startup_timeout: float = 30.0,
        notification_url: str | None = None,
        store_name: str = DEFAULT_STORE,
    ) -> None:
        super().__init__(workdir)
        if not _STORE_NAME.match(store_name):
            raise ValueError(
                f"not a DICOM store name: {store_name!r} (projects/P/locations/L/"
                "datasets/D/dicomStores/S)"
            )
        self.binary = binary
        self.plugin = plugin
        self.notification_url = notification_url  # see the module docstring
        self.store_name = store_name
        self.startup_timeout = startup_timeout
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def config(self) -> dict[str, object]:
        storage = str(self.workdir / "storage")
        return {
            "Name": "local-orthanc",
            "HttpPort": self.port,
            "HttpServerEnabled": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": False,  # tests speak DICOMweb only; no second port to race for
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "Plugins": [str(self.plugin)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
            "OverwriteInstances": True,  # STOW-RS retries of the same instance must succeed
            "StableAge": 1,
            "SaveJobs": False,
            "HttpThreadsCount": 8,
            "ConcurrentJobs": 1,
            "LuaScripts": [str(self.workdir / "notify.lua")] if self.notification_url else [],
        }

    def _start(self) -> None:
        if shutil.which(self.binary) is None:
            raise FileNotFoundError(
                f"Orthanc binary not found: {self.binary} (apt install orthanc)"
            )
        if not self.plugin.is_file():
            raise FileNotFoundError(
                f"DICOMweb plugin not found: {self.plugin} (apt install orthanc-dicomweb)"
            )
        config_path = self.workdir / "orthanc.json"
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.notification_url:
            (self.workdir / "notify.lua").write_text(
                _NOTIFY_LUA
                % {"url": json.dumps(self.notification_url), "store": json.dumps(self.store_name)}
            )
        # Orthanc cannot bind port 0, so we probe for a free port; another process may take it
        # before Orthanc binds it. That shows in the log, and a new port fixes it.
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = free_port()
            config_path.write_text(json.dumps(self.config(), indent=2))
            self._spawn([self.binary, str(config_path)])  # logs to stderr: self.log_path
            try:
                self._wait_ready(self._ready, self.startup_timeout)
                return
            except ServerStartError:
                self._kill()
                if attempt == _PORT_ATTEMPTS or _PORT_IN_USE not in log_tail(self.log_path, 5):
                    raise

    def _stop(self) -> None:
        # Orthanc's HTTP server takes ~2 s to stop on SIGTERM. Data in our own temp dir is
        # thrown away anyway, so kill it outright; a caller-supplied workdir gets a clean stop.
        self._kill(sig=signal.SIGKILL if self._own_workdir else signal.SIGTERM)

    def _ready(self) -> bool:
        # /system answers as soon as the HTTP server is up; plugins are loaded before that.
        response = requests.get(f"{self.url}/system", timeout=1)
        if response.status_code != 200:
            return False
        return requests.get(f"{self.dicomweb_url}/studies", timeout=2).status_code in (200, 204)

    def reset(self) -> None:
        """Deletes every study so that a test starts from an empty store."""
        session = requests.Session()
        studies = session.get(f"{self.url}/studies", timeout=10)
        studies.raise_for_status()
        for orthanc_id in studies.json():
            session.delete(f"{self.url}/studies/{orthanc_id}", timeout=30).raise_for_status()
        # Instances without a study cannot exist in Orthanc, so the store is now empty.

    def study_count(self) -> int:
        response = requests.get(f"{self.url}/studies", timeout=10)
        response.raise_for_status()
        return len(response.json())
