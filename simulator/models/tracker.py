"""GPS tracker on a vehicle: position, speed and heading.

Realism choices:
- Vehicles cruise at a per-device preferred speed that traffic varies (AR(1)),
  accelerate and brake at most ``MAX_ACCEL`` m/s², never exceed ~33 m/s
  (120 km/h), and stop now and then (deliveries, lights) for a while.
- Half of the fleet (``route_fraction``) drives a closed route of waypoints
  around the city centre (buses, delivery rounds); the rest wander as a
  correlated random walk (heading changes smoothly, steering back when they
  leave ``radius_m``), like taxis.
- Positions move continuously: the distance covered in a step is the
  trapezoid of the speeds at both ends, so a fix never jumps further than the
  vehicle could drive.  Heading is the direction of that motion (0 = north,
  clockwise), kept while the vehicle is stopped.
- Maths is in a local east/north plane around the centre (equirectangular);
  over a city the error against a haversine distance is far below GPS noise.

Setpoints: none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from simulator.models.base import FloatArray, SensorModel, ar1_step

EARTH_RADIUS_M = 6_371_008.8
MAX_ACCEL = 2.5      # m/s², normal driving
N_WAYPOINTS = 6


def haversine_m(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray,
                lon2: FloatArray) -> FloatArray:
    """Great-circle distance in metres between arrays of coordinates in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def _bearing_deg(dx: FloatArray, dy: FloatArray) -> FloatArray:
    deg = np.mod(np.degrees(np.arctan2(dx, dy)), 360.0)
    return np.asarray(np.where(deg >= 360.0, 0.0, deg))


class TrackerModel(SensorModel):
    name: ClassVar[str] = "tracker"
    device_type: ClassVar[str] = "tracker"
    metrics: ClassVar[tuple[str, ...]] = ("lat", "lon", "speed", "heading")
    battery_defaults: ClassVar[Mapping[str, float]] = {"capacity_mah": 3000.0,
                                                       "current_ma": 30.0}
    # cellular: towers with high-gain antennas on a grid, see radio_distance_m
    radio_defaults: ClassVar[Mapping[str, float]] = {"median_distance_m": 500.0, "gain_db": 15.0}
    defaults: ClassVar[Mapping[str, Any]] = {
        "tower_spacing_m": 1500.0,
        "center_lat": 52.5200,
        "center_lon": 13.4050,
        "radius_m": 8000.0,
        "route_fraction": 0.5,
        "mean_cruise_mps": 13.0,
        "max_speed_mps": 33.0,
        "mean_drive_s": 420.0,   # mean time between stops
        "mean_stop_s": 60.0,     # mean stop duration
    }

    def __init__(self, n: int, rng: np.random.Generator, params: Mapping[str, Any]) -> None:
        super().__init__(n, rng, params)
        self.lat0 = self.param("center_lat")
        self.lon0 = self.param("center_lon")
        self.radius = self.param("radius_m")
        self.max_speed = self.param("max_speed_mps")
        self.on_route = rng.random(n) < self.param("route_fraction")
        cruise = rng.normal(self.param("mean_cruise_mps"), 3.0, n)
        self.cruise = np.clip(cruise, 3.0, self.max_speed * 0.9)
        self.traffic = np.zeros(n)
        self.moving = rng.random(n) < 0.8
        self.speed = np.where(self.moving, self.cruise, 0.0)
        # closed routes: waypoints at sorted random angles around the centre
        angles = np.sort(rng.uniform(0, 2 * np.pi, (n, N_WAYPOINTS)), axis=1)
        radii = self.radius * rng.uniform(0.2, 0.9, (n, N_WAYPOINTS))
        wx, wy = radii * np.sin(angles), radii * np.cos(angles)
        self.wx = np.concatenate([wx, wx[:, :1]], axis=1)
        self.wy = np.concatenate([wy, wy[:, :1]], axis=1)
        seg = np.hypot(np.diff(self.wx, axis=1), np.diff(self.wy, axis=1))
        self.cum = np.concatenate([np.zeros((n, 1)), np.cumsum(seg, axis=1)], axis=1)
        self.route_len = self.cum[:, -1]
        self.s = rng.uniform(0, 1, n) * self.route_len
        # random walkers start anywhere inside the area
        r0 = self.radius * np.sqrt(rng.random(n)) * 0.8
        a0 = rng.uniform(0, 2 * np.pi, n)
        self.x, self.y = r0 * np.sin(a0), r0 * np.cos(a0)
        self.heading = rng.uniform(0, 360, n)
        self.turn = np.zeros(n)
        rx, ry, rh = self._route_position(self.s)
        self.x = np.where(self.on_route, rx, self.x)
        self.y = np.where(self.on_route, ry, self.y)
        self.heading = np.where(self.on_route, rh, self.heading)
        self.last_step_m = np.zeros(n)

    def _route_position(self, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        idx = np.minimum((self.cum[:, 1:-1] <= s[:, None]).sum(axis=1), N_WAYPOINTS - 1)
        rows = np.arange(self.n)
        x0, y0 = self.wx[rows, idx], self.wy[rows, idx]
        dx, dy = self.wx[rows, idx + 1] - x0, self.wy[rows, idx + 1] - y0
        length = np.maximum(self.cum[rows, idx + 1] - self.cum[rows, idx], 1e-9)
        frac = (s - self.cum[rows, idx]) / length
        return x0 + frac * dx, y0 + frac * dy, _bearing_deg(dx, dy)

    @property
    def distance_from_centre_m(self) -> FloatArray:
        return np.asarray(np.hypot(self.x, self.y))

    def radio_distance_m(self) -> FloatArray:
        """Distance to the nearest cell tower of a square grid (30 m masts), so RSSI
        rises and falls as the vehicle drives past towers."""
        spacing = self.param("tower_spacing_m")
        dx = np.mod(self.x + spacing / 2, spacing) - spacing / 2
        dy = np.mod(self.y + spacing / 2, spacing) - spacing / 2
        return np.asarray(np.sqrt(dx * dx + dy * dy + 30.0**2))

    def _advance_speed(self, dt_s: float) -> FloatArray:
        rng = self.rng
        p_stop = 1.0 - np.exp(-dt_s / self.param("mean_drive_s"))
        p_go = 1.0 - np.exp(-dt_s / self.param("mean_stop_s"))
        u = rng.random(self.n)
        self.moving = np.where(self.moving, u >= p_stop, u < p_go)
        self.traffic = ar1_step(self.traffic, dt_s, 90.0, 3.0, rng)
        target = np.where(self.moving, np.clip(self.cruise + self.traffic, 2.0, self.max_speed),
                          0.0)
        change = np.clip(target - self.speed, -MAX_ACCEL * dt_s, MAX_ACCEL * dt_s)
        old = self.speed
        self.speed = np.clip(self.speed + change, 0.0, self.max_speed)
        return np.asarray(0.5 * (old + self.speed) * dt_s)

    def _advance_walk(self, dist: FloatArray, dt_s: float) -> None:
        self.turn = ar1_step(self.turn, dt_s, 30.0, 4.0, self.rng)  # deg/s
        outside = np.hypot(self.x, self.y) > self.radius
        home = _bearing_deg(-self.x, -self.y)
        diff = np.mod(home - self.heading + 180.0, 360.0) - 180.0
        steer = np.where(outside, np.clip(diff, -20.0 * dt_s, 20.0 * dt_s), 0.0)
        moved = dist > 0
        new_heading = np.mod(self.heading + np.where(moved, self.turn * dt_s + steer, 0.0), 360.0)
        rad = np.radians(new_heading)
        walk = ~self.on_route
        self.x = np.where(walk, self.x + dist * np.sin(rad), self.x)
        self.y = np.where(walk, self.y + dist * np.cos(rad), self.y)
        self.heading = np.where(walk, new_heading, self.heading)

    def step(self, t_s: float, dt_s: float) -> dict[str, FloatArray]:
        dt_s = max(dt_s, 0.0)
        prev_x, prev_y = self.x, self.y
        dist = self._advance_speed(dt_s)
        self._advance_walk(dist, dt_s)
        self.s = np.mod(self.s + np.where(self.on_route, dist, 0.0), self.route_len)
        rx, ry, rh = self._route_position(self.s)
        self.x = np.where(self.on_route, rx, self.x)
        self.y = np.where(self.on_route, ry, self.y)
        self.heading = np.where(self.on_route & (dist > 0), rh, self.heading)
        self.heading = np.where(self.heading >= 360.0, 0.0, self.heading)
        self.last_step_m = np.hypot(self.x - prev_x, self.y - prev_y)
        lat = self.lat0 + np.degrees(self.y / EARTH_RADIUS_M)
        lon = self.lon0 + np.degrees(self.x / (EARTH_RADIUS_M * np.cos(np.radians(self.lat0))))
        return {"lat": lat, "lon": lon, "speed": self.speed.copy(),
                "heading": self.heading.copy()}
