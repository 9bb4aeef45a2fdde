"""The 3-D view: the loss surface as a lit, colour-mapped mesh with balls rolling on it.

The view takes plain arrays and knows nothing of optimizers. Everything is drawn in a
normalised scene: the longer side of the (x, y) box spans [-1, 1] (x and y keep one scale, so
angles are true) and the display height spans [0, SCENE_HEIGHT]. `to_scene` is that mapping;
balls, trails, markers and arrows all go through it.

Needs a real OpenGL context: under Xvfb use QT_QPA_PLATFORM=xcb, and set
Qt.AA_ShareOpenGLContexts before the QApplication exists (shared/reference/platform-notes.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
import pyqtgraph.opengl as gl
from OpenGL import GL
from pyqtgraph.opengl import shaders
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QMatrix4x4,
    QPainter,
    QVector3D,
)
from PySide6.QtOpenGL import QOpenGLFramebufferObject
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from gdsim.ui.views import colormaps
from gdsim.ui.views.geometry import (
    HeightScale,
    TrailThinner,
    arrow_segments,
    bilinear,
    clean_grid,
    contour_segments,
    decimate_indices,
    scale_arrows,
)

SCENE_HEIGHT = 1.1
BALL_RADIUS = 0.05
MAX_TRAIL_POINTS = 5000
#: Trails are thinned to a grid of this size in scene units (the scene is 2 wide): under a
#: pixel in any view smaller than about 1000 px, so the line looks the same with far fewer
#: points (see TrailThinner).
TRAIL_CELL = 0.002
OVERLAY_KINDS = colormaps.OVERLAY_KINDS
OVERLAY_COLORS = colormaps.OVERLAY_COLORS
CAMERA_PRESETS = ("default", "top", "side-x", "side-y")
BACKGROUND = colormaps.BACKGROUND

# Lighting with a light over the viewer's shoulder; abs() lights the underside too, so a surface
# seen from below is not black. Ambient stays high so colours remain readable as the colour map.
_VERTEX = """
    uniform mat4 u_mvp;
    uniform mat3 u_normal;
    attribute vec4 a_position;
    attribute vec3 a_normal;
    attribute vec4 a_color;
    varying vec4 v_color;
    varying vec3 v_normal;
    void main() {
        v_normal = normalize(u_normal * a_normal);
        v_color = a_color;
        gl_Position = u_mvp * a_position;
    }
"""
_SURFACE_FRAGMENT = """
    #ifdef GL_ES
    precision mediump float;
    #endif
    varying vec4 v_color;
    varying vec3 v_normal;
    void main() {
        vec3 n = normalize(v_normal);
        float d = abs(dot(n, normalize(vec3(-0.35, 0.45, 1.0))));
        gl_FragColor = vec4(v_color.rgb * (0.6 + 0.4 * d), v_color.a);
    }
"""
_BALL_FRAGMENT = """
    #ifdef GL_ES
    precision mediump float;
    #endif
    varying vec4 v_color;
    varying vec3 v_normal;
    void main() {
        vec3 n = normalize(v_normal);
        vec3 l = normalize(vec3(-0.35, 0.45, 1.0));
        float d = max(dot(n, l), 0.0);
        float s = pow(max(dot(reflect(-l, n), vec3(0.0, 0.0, 1.0)), 0.0), 24.0);
        vec3 rgb = v_color.rgb * (0.45 + 0.55 * d) + vec3(0.45) * s;
        gl_FragColor = vec4(min(rgb, vec3(1.0)), v_color.a);
    }
"""
_SURFACE_SHADER = shaders.ShaderProgram(
    "gdsim-surface", [shaders.VertexShader(_VERTEX), shaders.FragmentShader(_SURFACE_FRAGMENT)]
)
_BALL_SHADER = shaders.ShaderProgram(
    "gdsim-ball", [shaders.VertexShader(_VERTEX), shaders.FragmentShader(_BALL_FRAGMENT)]
)


# The surface is pushed back in depth a little, so lines drawn on it (contours, trails) win the
# depth test instead of flickering in and out of it; the state is switched off again for balls.
_SURFACE_GL = {
    GL.GL_DEPTH_TEST: True,
    GL.GL_BLEND: False,
    GL.GL_CULL_FACE: False,
    GL.GL_POLYGON_OFFSET_FILL: True,
    "glPolygonOffset": (1.5, 2.0),
    "glDepthMask": (GL.GL_TRUE,),
}
_BALL_GL = {
    GL.GL_DEPTH_TEST: True,
    GL.GL_BLEND: False,
    GL.GL_CULL_FACE: False,
    GL.GL_POLYGON_OFFSET_FILL: False,
    "glDepthMask": (GL.GL_TRUE,),
}
# Lines are depth-tested (a hill hides the trail behind it) but do not write depth: with
# antialiasing, a segment's soft edge would otherwise mask the next segment's core where they
# overlap, and a trail of many short steps turns into a striped rope.
_LINE_GL = {
    GL.GL_DEPTH_TEST: True,
    GL.GL_BLEND: True,
    GL.GL_CULL_FACE: False,
    "glBlendFuncSeparate": (
        GL.GL_SRC_ALPHA,
        GL.GL_ONE_MINUS_SRC_ALPHA,
        GL.GL_ONE,
        GL.GL_ONE_MINUS_SRC_ALPHA,
    ),
    "glDepthMask": (GL.GL_FALSE,),
}
_POINT_GL = {**_LINE_GL, "glDepthMask": (GL.GL_TRUE,)}


def _rgba(color: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    c = QColor(color)
    if not c.isValid():
        raise ValueError(f"Not a colour: {color!r} (expected '#rrggbb')")
    return (c.redF(), c.greenF(), c.blueF(), alpha)


class _MeshWithNormals(gl.MeshData):
    """MeshData whose vertex normals are given, not derived.

    MeshData.vertexNormals loops over vertices in Python (about 0.25 s for a 200x200 grid, paid
    on every surface change, e.g. while a slider reshapes it); on a grid the normal is
    (-dz/dx, -dz/dy, 1), which NumPy gives at once. On a unit sphere the normal is the vertex
    itself (MeshData.sphere's winding makes its derived normals point inwards).
    """

    def __init__(self, vertexes, faces, normals, colors=None):
        super().__init__(vertexes=vertexes, faces=faces, vertexColors=colors)
        self._given_normals = np.ascontiguousarray(normals, dtype=np.float32)

    def vertexNormals(self, indexed=None):
        if indexed is None:
            return self._given_normals
        return self._given_normals[self.faces()]


def _unit_sphere() -> gl.MeshData:
    md = gl.MeshData.sphere(rows=16, cols=28, radius=1.0)
    verts = md.vertexes()
    return _MeshWithNormals(verts, md.faces(), verts)


def _grid_faces(nx: int, ny: int) -> np.ndarray:
    idx = np.arange(nx * ny, dtype=np.uint32).reshape(nx, ny)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])


class _Label(NamedTuple):
    pos: np.ndarray
    text: str
    color: QColor
    font: QFont


class _LabelLayer(gl.GLGraphicsItem.GLGraphicsItem):
    """All axis labels in one QPainter session per frame.

    pyqtgraph's GLTextItem opens a QPainter on the GL widget for every label; each open and
    close flushes the GL state, which under llvmpipe cost ~9 ms a frame for a dozen labels.
    """

    def __init__(self) -> None:
        super().__init__()
        self._labels: list[_Label] = []
        self._metrics: dict[tuple[str, str], QRectF] = {}

    def set_labels(self, labels: list[_Label]) -> None:
        self._labels = list(labels)
        self._metrics = {}
        self.update()

    def paint(self) -> None:
        if not self._labels:
            return
        self.setupGLState()
        rect = QRectF(self.view().rect())
        to_viewport = QMatrix4x4()
        to_viewport.viewport(rect.left(), rect.bottom(), rect.width(), -rect.height())
        project = to_viewport * self.mvpMatrix()
        painter = QPainter(self.view())
        painter.setRenderHints(
            QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing
        )
        for label in self._labels:
            key = (label.text, label.font.toString())
            box = self._metrics.get(key)
            if box is None:
                box = QRectF(QFontMetrics(label.font).tightBoundingRect(label.text))
                self._metrics[key] = box
            p = project.map(QVector3D(*map(float, label.pos))).toPointF()
            painter.setPen(label.color)
            painter.setFont(label.font)
            painter.drawText(QPointF(p.x() - box.width() / 2, p.y() + box.height() / 2), label.text)
        painter.end()


class _GLView(gl.GLViewWidget):
    """GLViewWidget that keeps its still scenery in a cached image between camera moves.

    The surface mesh (80 000 triangles at 200x200) and the lines on it cost most of a frame
    under llvmpipe, yet they change only with the camera or the surface, while the balls move
    60 times a second. Items marked static (`add_static`) are drawn into an offscreen
    framebuffer with their depth; each frame copies colour and depth from it and draws only
    the moving items on top, depth-tested against the cached scenery as before. Any change of
    a static item (data, visibility, colours) or of the camera or size redraws the cache.
    Exports (renderToArray) and picking go through paint() unchanged and draw everything.

    Also re-enables depth writes before clearing: lines switch depth writes off (see
    _LINE_GL), and glClear leaves the depth buffer alone while they are off, so without this
    the next frame (or export tile) would be tested against the last frame's depths.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._static: set[int] = set()
        self._layer: str | None = None  # None: every item; "static" / "moving": one kind
        self._cache = None  # QOpenGLFramebufferObject
        self._cache_context = None  # framebuffers are not shared: a new context needs its own
        self._cache_key: tuple | None = None
        self._cache_ok = True  # off for good if the copy fails (e.g. a multisampled target)

    def add_static(self, item) -> None:
        """Mark an added item as scenery: drawn into the cache, redrawn when it changes."""
        self._static.add(id(item))
        update = item.update

        def changed() -> None:
            self._cache_key = None
            update()

        item.update = changed

    def invalidate_cache(self) -> None:
        self._cache_key = None

    def paint(self, *, region, viewport, useItemNames=False):
        GL.glDepthMask(GL.GL_TRUE)
        super().paint(region=region, viewport=viewport, useItemNames=useItemNames)

    def drawItemTree(self, item=None, useItemNames=False):
        if item is not None or self._layer is None:
            return super().drawItemTree(item, useItemNames=useItemNames)
        static = self._layer == "static"
        items = [
            x
            for x in self.items
            if x.parentItem() is None and (id(x) in self._static) == static and x.visible()
        ]
        items.sort(key=lambda a: a.depthValue())
        for i in items:
            self._modelViewStack.append(self.currentModelView() * i.transform())
            try:
                super().drawItemTree(i, useItemNames=useItemNames)
            finally:
                self._modelViewStack.pop()

    def paintGL(self):
        region = self.getViewport()
        if not self._cache_ok or self.format().samples() > 1:
            return super().paintGL()
        target = self.defaultFramebufferObject()
        w, h = int(region[2]), int(region[3])
        key = (
            tuple(region),
            tuple(self.projectionMatrix(region, region).data()),
            tuple(self.viewMatrix().data()),
            str(self.opts["bgcolor"]),
        )
        try:
            context = self.context()
            if (
                self._cache is None
                or self._cache_context is not context
                or (self._cache.width(), self._cache.height()) != (w, h)
            ):
                self._cache_context = context
                self._cache = QOpenGLFramebufferObject(
                    w, h, QOpenGLFramebufferObject.Attachment.CombinedDepthStencil
                )
                self._cache_key = None
            if key != self._cache_key:
                self._cache.bind()
                GL.glViewport(*region)
                self._layer = "static"
                self.paint(region=region, viewport=region)
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, target)
                self._cache_key = key
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._cache.handle())
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, target)
            GL.glBlitFramebuffer(
                0, 0, w, h, 0, 0, w, h,
                GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT,
                GL.GL_NEAREST,
            )  # fmt: skip
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, target)
            GL.glViewport(*region)
            self.setProjection(region, region)
            self.setModelview()
            self._layer = "moving"
            self.drawItemTree()
        except Exception:
            # Draw the plain way from now on rather than show a broken picture.
            self._cache_ok = False
            self._layer = None
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, target)
            GL.glViewport(*region)
            super().paintGL()
            from pyqtgraph import debug

            debug.printExc()
        finally:
            self._layer = None


class Surface3DView(QWidget):
    """A lit 3-D loss surface with balls, trails, minima and arrow overlays.

    Orbit with the left mouse button, pan with the middle one (or Ctrl+left), zoom with the
    wheel: GLViewWidget's own controls.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._gl = _GLView()
        # Next to docks a GLViewWidget can be laid out at width 0 and draw nothing.
        self._gl.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._gl.setMinimumSize(240, 180)
        self._gl.setBackgroundColor(BACKGROUND)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._gl)
        self._auto_fit = True

        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._scale = HeightScale.fit(np.zeros((2, 2)), log=False)
        self._center = (0.0, 0.0)
        self._xy_factor = 1.0
        self._z_factor = 1.0
        self._half = (1.0, 1.0)
        self._scene_z: np.ndarray | None = None
        self._normals_grid: np.ndarray | None = None
        self._faces_cache: dict[tuple[int, int], np.ndarray] = {}

        self._surface: gl.GLMeshItem | None = None
        self._contours = gl.GLLinePlotItem(
            mode="lines", color=(0.0, 0.0, 0.0, 0.45), width=1.0, antialias=False
        )
        self._contours.setGLOptions(_LINE_GL)
        self._wire = gl.GLLinePlotItem(
            mode="lines", color=(1.0, 1.0, 1.0, 0.18), width=1.0, antialias=False
        )
        self._wire.setGLOptions(_LINE_GL)
        self._floor = gl.GLLinePlotItem(mode="lines", color=(1, 1, 1, 0.22), antialias=False)
        self._floor.setGLOptions(_LINE_GL)
        self._labels: list[tuple[np.ndarray, str]] = []
        self._label_items: list[_Label] = []
        self._label_layer = _LabelLayer()
        self._gl.addItem(self._label_layer)
        for item in (self._floor, self._wire, self._contours):
            item.hide()
            self._gl.addItem(item)
            self._gl.add_static(item)
        self._contours_on = True
        self._wire_on = False

        self._minima_pins = self._make_lines(width=2.0, color=(1, 1, 1, 0.9))
        self._minima_heads = self._make_points(size=9.0, color=(1, 1, 1, 1))
        self._local_pins = self._make_lines(width=1.5, color=(0.75, 0.75, 0.75, 0.8))
        self._local_heads = self._make_points(size=7.0, color=(0.8, 0.8, 0.8, 1))
        for item in (self._minima_pins, self._minima_heads, self._local_pins, self._local_heads):
            self._gl.add_static(item)
        self._minima_xyz = np.empty((0, 3))
        self._local_xyz = np.empty((0, 3))

        self._colors: list[str] = []
        self._rgba = np.empty((0, 4))
        self._thinners: list[TrailThinner] = []
        self._crosses = self._make_lines(width=3.0, color=(1, 1, 1, 1))
        self._sphere = _unit_sphere()
        self._sphere_verts = np.asarray(self._sphere.vertexes(), dtype=np.float32)
        self._sphere_faces = np.asarray(self._sphere.faces(), dtype=np.uint32)
        # All trails in two line items (healthy and faded) and all balls in one mesh: every GL
        # item costs a few dozen GL calls a frame, each a trip out of Python, and while the
        # simulation thread holds the GIL every trip can wait for it.
        self._trail_lines = self._make_lines(width=2.5, color=(1, 1, 1, 1))
        self._faded_lines = self._make_lines(width=1.5, color=(1, 1, 1, 0.45))
        self._ball_mesh = gl.GLMeshItem(
            meshdata=self._sphere, smooth=True, shader=_BALL_SHADER, glOptions=_BALL_GL
        )
        self._ball_mesh.hide()
        self._gl.addItem(self._ball_mesh)
        self._ball_key: bytes | None = None
        self._arrows = {
            kind: self._make_lines(width=2.5, color=_rgba(OVERLAY_COLORS[kind]))
            for kind in OVERLAY_KINDS
        }
        self._overlay_on = dict.fromkeys(OVERLAY_KINDS, False)
        self._last_frame: dict | None = None

        self.reset_camera()
        self._gl.installEventFilter(self)

    # ----------------------------------------------------------------------------- plumbing
    @property
    def gl_widget(self) -> gl.GLViewWidget:
        """The GLViewWidget inside (for focus handling or a screenshot by the window)."""
        return self._gl

    def _make_lines(self, *, width: float, color) -> gl.GLLinePlotItem:
        item = gl.GLLinePlotItem(mode="lines", width=width, color=color, antialias=False)
        item.setGLOptions(_LINE_GL)
        item.hide()
        self._gl.addItem(item)
        return item

    def _make_points(self, *, size: float, color) -> gl.GLScatterPlotItem:
        item = gl.GLScatterPlotItem(size=size, color=color, pxMode=True)
        item.setGLOptions(_POINT_GL)
        item.hide()
        self._gl.addItem(item)
        return item

    @staticmethod
    def _set_lines(item: gl.GLLinePlotItem, pos: np.ndarray, **kw) -> None:
        if len(pos) == 0:
            item.hide()
            return
        item.setData(pos=pos, **kw)
        item.show()

    # ------------------------------------------------------------------------------ mapping
    def to_scene(self, x, y, z) -> np.ndarray:
        """Data (x, y, loss) -> scene coordinates, shape broadcast(x, y, z) + (3,)."""
        x, y, z = np.broadcast_arrays(
            np.asarray(x, dtype=np.float64),
            np.asarray(y, dtype=np.float64),
            np.asarray(z, dtype=np.float64),
        )
        out = np.empty((*x.shape, 3))
        out[..., 0] = (x - self._center[0]) * self._xy_factor
        out[..., 1] = (y - self._center[1]) * self._xy_factor
        out[..., 2] = (self._scale.height(z) - self._scale.hmin) * self._z_factor
        return out

    def _xy_to_scene(self, xy: np.ndarray) -> np.ndarray:
        return (np.asarray(xy, dtype=np.float64) - self._center) * self._xy_factor

    def _surface_height(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Scene height of the drawn mesh at data points (clamped to the box)."""
        if self._scene_z is None:
            return np.zeros_like(np.asarray(px, dtype=np.float64))
        return bilinear(self._x, self._y, self._scene_z, px, py)

    # ------------------------------------------------------------------------------ surface
    def set_surface(
        self,
        x: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        *,
        log: bool = False,
        cmap: str = colormaps.DEFAULT,
        wireframe: bool = False,
        contour_levels: int = 15,
    ) -> None:
        """Show z[i, j] = f(x[i], y[j]) on the ascending grids x (nx,), y (ny,).

        log: height and colour follow log10(z - zmin + eps) (see HeightScale).
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        z = clean_grid(z)
        if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
            raise ValueError("x and y must be 1-D with at least 2 points each")
        if z.shape != (len(x), len(y)):
            raise ValueError(
                f"z must have shape (len(x), len(y)) = {(len(x), len(y))}, got {z.shape}"
            )
        colormaps.get(cmap)  # unknown names fail here, before anything changes

        self._x, self._y = x, y
        self._scale = HeightScale.fit(z, log=log)
        span_x, span_y = float(x[-1] - x[0]), float(y[-1] - y[0])
        self._center = (0.5 * float(x[0] + x[-1]), 0.5 * float(y[0] + y[-1]))
        self._xy_factor = 2.0 / max(span_x, span_y)
        self._half = (0.5 * span_x * self._xy_factor, 0.5 * span_y * self._xy_factor)
        self._z_factor = SCENE_HEIGHT / (self._scale.hmax - self._scale.hmin)

        h = self._scale.height(z)
        sx = (x - self._center[0]) * self._xy_factor
        sy = (y - self._center[1]) * self._xy_factor
        sz = (h - self._scale.hmin) * self._z_factor
        self._scene_z = sz
        for thinner in self._thinners:  # the scene mapping changed
            thinner.clear()
        self._ball_key = None
        nx, ny = sz.shape
        verts = np.empty((nx, ny, 3), dtype=np.float32)
        verts[..., 0] = sx[:, None]
        verts[..., 1] = sy[None, :]
        verts[..., 2] = sz
        gx, gy = np.gradient(sz, sx, sy)
        normals = np.stack([-gx, -gy, np.ones_like(sz)], axis=-1)
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
        self._normals_grid = normals
        colors = colormaps.map_unit(
            cmap, (h - self._scale.hmin) / (self._scale.hmax - self._scale.hmin)
        )
        faces = self._faces_cache.get((nx, ny))
        if faces is None:
            faces = self._faces_cache.setdefault((nx, ny), _grid_faces(nx, ny))
        mesh = _MeshWithNormals(
            verts.reshape(-1, 3), faces, normals.reshape(-1, 3), colors.reshape(-1, 4)
        )
        if self._surface is None:
            self._surface = gl.GLMeshItem(
                meshdata=mesh, smooth=True, shader=_SURFACE_SHADER, glOptions=_SURFACE_GL
            )
            self._surface.setDepthValue(-10)
            self._gl.addItem(self._surface)
            self._gl.add_static(self._surface)
        else:
            self._surface.setMeshData(meshdata=mesh)

        lift = 0.004 * SCENE_HEIGHT
        self._contour_levels = contour_levels
        seg, lev = contour_segments(sx, sy, sz, self._scene_levels(contour_levels))
        if len(seg):
            pos = np.empty((len(seg) * 2, 3), dtype=np.float32)
            pos[:, :2] = seg.reshape(-1, 2)
            pos[:, 2] = np.repeat(self._scene_levels(contour_levels)[lev], 2) + lift
            self._set_lines(self._contours, pos)
        else:
            self._contours.setData(pos=np.zeros((0, 3), dtype=np.float32))
        self._contours.setVisible(self._contours_on and len(seg) > 0)

        self._set_lines(self._wire, self._wire_segments(verts, lift))
        self._wire.setVisible(wireframe)
        self._wire_on = wireframe
        self._build_floor(x, y)
        if self._auto_fit:  # a box of another shape needs another distance
            self._gl.setCameraPosition(distance=self._fit_distance(self._aspect()))
        # Minima and runs were placed against the old surface: place them again.
        self._place_minima()
        if self._last_frame is not None:
            self.update_runs(**self._last_frame)

    def _scene_levels(self, n: int) -> np.ndarray:
        return (self._scale.levels(n) - self._scale.hmin) * self._z_factor

    @staticmethod
    def _wire_segments(verts: np.ndarray, lift: float) -> np.ndarray:
        """Every k-th grid line (about 30 each way), so a 400x400 grid is not a solid web."""
        nx, ny, _ = verts.shape
        kx, ky = max(1, nx // 30), max(1, ny // 30)
        rows = list(range(0, nx, kx)) + ([nx - 1] if (nx - 1) % kx else [])
        cols = list(range(0, ny, ky)) + ([ny - 1] if (ny - 1) % ky else [])
        pieces = []
        for i in rows:
            line = verts[i]
            pieces.append(np.stack([line[:-1], line[1:]], axis=1).reshape(-1, 3))
        for j in cols:
            line = verts[:, j]
            pieces.append(np.stack([line[:-1], line[1:]], axis=1).reshape(-1, 3))
        pos = np.concatenate(pieces).astype(np.float32)
        pos[:, 2] += lift
        return pos

    def _build_floor(self, x: np.ndarray, y: np.ndarray) -> None:
        """A faint frame with ticks under the surface, and axis labels: where x and y grow."""
        hx, hy = self._half
        zf = -0.06 * SCENE_HEIGHT
        corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy], [-hx, -hy]])
        segs = [np.stack([corners[:-1], corners[1:]], axis=1).reshape(-1, 2)]
        tick = 0.04
        xt = pg.AxisItem("bottom").tickValues(x[0], x[-1], 400)
        yt = pg.AxisItem("left").tickValues(y[0], y[-1], 400)
        xticks = np.array([v for _, vals in xt[:1] for v in vals])
        yticks = np.array([v for _, vals in yt[:1] for v in vals])
        xs = (xticks - self._center[0]) * self._xy_factor
        ys = (yticks - self._center[1]) * self._xy_factor
        if len(xs):
            segs.append(
                np.stack(
                    [
                        np.stack([xs, np.full_like(xs, -hy)], 1),
                        np.stack([xs, np.full_like(xs, -hy - tick)], 1),
                    ],
                    axis=1,
                ).reshape(-1, 2)
            )
        if len(ys):
            segs.append(
                np.stack(
                    [
                        np.stack([np.full_like(ys, hx), ys], 1),
                        np.stack([np.full_like(ys, hx + tick), ys], 1),
                    ],
                    axis=1,
                ).reshape(-1, 2)
            )
        flat = np.concatenate(segs)
        pos = np.column_stack([flat, np.full(len(flat), zf)]).astype(np.float32)
        self._set_lines(self._floor, pos)

        labels: list[tuple[np.ndarray, str]] = []
        for v, sxv in zip(xticks, xs, strict=True):
            labels.append((np.array([sxv, -hy - 2.6 * tick, zf]), f"{v:g}"))
        for v, syv in zip(yticks, ys, strict=True):
            if syv > -hy + 0.12:  # the corner already carries the last x label
                labels.append((np.array([hx + 1.8 * tick, syv, zf]), f"{v:g}"))
        labels.append((np.array([0.0, -hy - 6 * tick, zf]), "x"))
        labels.append((np.array([hx + 6 * tick, 0.0, zf]), "y"))
        self._set_labels(labels)

    def _set_labels(self, labels: list[tuple[np.ndarray, str]]) -> None:
        self._label_items = []
        self._labels = labels
        font = QFont()
        font.setPointSizeF(8.5)
        axis_font = QFont()
        axis_font.setPointSizeF(11)
        axis_font.setItalic(True)
        for pos, text in labels:
            item = _Label(
                pos=np.asarray(pos, dtype=np.float64),
                text=text,
                color=QColor(225, 225, 225) if len(text) == 1 else QColor(170, 170, 170),
                font=axis_font if text in ("x", "y") else font,
            )
            self._label_items.append(item)
        self._label_layer.set_labels(self._label_items)

    def set_contours_visible(self, visible: bool) -> None:
        """Level lines on the surface (the same levels the 2-D view draws)."""
        self._contours_on = bool(visible)
        self._contours.setVisible(self._contours_on and self._contours.pos is not None)

    def contours_visible(self) -> bool:
        return self._contours_on

    def set_wireframe(self, visible: bool) -> None:
        self._wire_on = bool(visible)
        self._wire.setVisible(self._wire_on and self._surface is not None)

    # ------------------------------------------------------------------------------ minima
    def set_minima(self, xy: np.ndarray, z: np.ndarray) -> None:
        """Known global minima (k, 2) with values (k,): white pins standing on the surface."""
        self._minima_xyz = self._xyz(xy, z)
        self._place_minima()

    def set_local_minima(self, xy: np.ndarray, z: np.ndarray) -> None:
        """Local minima: shorter grey pins."""
        self._local_xyz = self._xyz(xy, z)
        self._place_minima()

    @staticmethod
    def _xyz(xy, z) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        if len(xy) != len(z):
            raise ValueError(f"{len(xy)} minima positions but {len(z)} values")
        return np.column_stack([xy, z])

    def _place_minima(self) -> None:
        for data, pins, heads, height in (
            (self._minima_xyz, self._minima_pins, self._minima_heads, 0.16),
            (self._local_xyz, self._local_pins, self._local_heads, 0.10),
        ):
            if len(data) == 0 or self._scene_z is None:
                pins.hide()
                heads.hide()
                continue
            base = self.to_scene(data[:, 0], data[:, 1], data[:, 2])
            base[:, 2] = np.maximum(base[:, 2], self._surface_height(data[:, 0], data[:, 1]))
            top = base.copy()
            top[:, 2] += height * SCENE_HEIGHT
            pins.setData(pos=np.stack([base, top], axis=1).reshape(-1, 3))
            heads.setData(pos=top)
            pins.show()
            heads.show()

    # -------------------------------------------------------------------------------- runs
    def set_runs(self, colors: Sequence[str]) -> None:
        """One ball and one trail per run, in these '#rrggbb' colours (replaces the old runs)."""
        rgba = [_rgba(c) for c in colors]
        self._colors = list(colors)
        self._rgba = np.asarray(rgba, dtype=np.float32).reshape(-1, 4)
        self._thinners = [TrailThinner(TRAIL_CELL, self._trail_scene) for _ in colors]
        for item in (self._trail_lines, self._faded_lines, self._ball_mesh, self._crosses):
            item.hide()
        self._ball_key = None
        for item in self._arrows.values():
            item.hide()
        self._last_frame = None

    def update_runs(
        self,
        positions: np.ndarray,
        z: np.ndarray,
        trails: Sequence[np.ndarray],
        visible: Sequence[bool],
        diverged: Sequence[bool],
        *,
        gradients: np.ndarray | None = None,
        velocities: np.ndarray | None = None,
        steps: np.ndarray | None = None,
    ) -> None:
        """Draw the latest frame. Cheap enough to call at the screen's refresh rate.

        positions (n, 2) and z (n,) place the balls; trails[i] is (k_i, 3) of x, y, loss.
        A diverged run has no ball: its trail is faded and ends in an X at its last finite
        point. gradients / velocities / steps are (n, 2) vectors for the arrow overlays
        (drawn only while that overlay is on); the gradient arrow points downhill, along -g.
        """
        n = len(self._colors)
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        if len(positions) != n or len(z) != n or len(trails) != n:
            raise ValueError(f"set_runs announced {n} runs; got {len(positions)} positions")
        if len(visible) != n or len(diverged) != n:
            raise ValueError(f"visible and diverged need {n} entries each")
        self._last_frame = dict(
            positions=positions,
            z=z,
            trails=trails,
            visible=visible,
            diverged=diverged,
            gradients=gradients,
            velocities=velocities,
            steps=steps,
        )
        if self._scene_z is None:
            return
        crosses = []
        centres = np.full((n, 3), np.nan)
        lines: dict[bool, list[tuple[np.ndarray, int]]] = {False: [], True: []}
        for i in range(n):
            if not visible[i]:
                continue
            scene = self._thinners[i].update(np.asarray(trails[i]).reshape(-1, 3))
            if len(scene) > MAX_TRAIL_POINTS:
                scene = scene[decimate_indices(len(scene), MAX_TRAIL_POINTS)]
            inside = self._in_stage(scene)
            lines[bool(diverged[i])].append((self._segments(scene, inside), i))
            if diverged[i]:
                if inside.any():
                    crosses.append((scene[np.nonzero(inside)[0][-1]], _rgba(self._colors[i])))
                continue
            centre = self._ball_centre(positions[i], z[i])
            if centre is not None:
                centres[i] = centre
        self._set_trail_lines(self._trail_lines, lines[False], 1.0)
        self._set_trail_lines(self._faded_lines, lines[True], 0.45)
        self._draw_balls(centres)
        self._draw_crosses(crosses)
        self._draw_arrows(positions, centres, gradients, velocities, steps)

    def _trail_scene(self, pts: np.ndarray) -> np.ndarray:
        """Trail rows (x, y, loss) -> scene points, lifted a little off the surface."""
        scene = self.to_scene(pts[:, 0], pts[:, 1], pts[:, 2])
        scene[:, 2] += 0.006 * SCENE_HEIGHT
        return scene

    def _set_trail_lines(self, item, pieces: list[tuple[np.ndarray, int]], alpha: float) -> None:
        pieces = [(seg, i) for seg, i in pieces if len(seg)]
        if not pieces:
            item.hide()
            return
        pos = np.concatenate([seg for seg, _ in pieces])
        color = np.repeat(self._rgba[[i for _, i in pieces]], [len(seg) for seg, _ in pieces], 0)
        color[:, 3] = alpha
        item.setData(pos=pos, color=color)
        item.show()

    def _draw_balls(self, centres: np.ndarray) -> None:
        """Every ball (rows of centres that are not NaN) as one lit mesh of spheres."""
        shown = np.nonzero(np.isfinite(centres).all(axis=1))[0]
        if len(shown) == 0:
            self._ball_mesh.hide()
            return
        key = centres[shown].tobytes() + shown.tobytes() + self._rgba.tobytes()
        if key != self._ball_key:
            self._ball_key = key
            unit, nv = self._sphere_verts, len(self._sphere_verts)
            c = centres[shown].astype(np.float32)
            verts = (c[:, None, :] + BALL_RADIUS * unit[None]).reshape(-1, 3)
            normals = np.tile(unit, (len(shown), 1))
            colors = np.repeat(self._rgba[shown], nv, axis=0)
            offsets = (np.arange(len(shown), dtype=np.uint32) * nv)[:, None, None]
            faces = (self._sphere_faces[None] + offsets).reshape(-1, 3)
            self._ball_mesh.setMeshData(meshdata=_MeshWithNormals(verts, faces, normals, colors))
        self._ball_mesh.show()

    def _in_stage(self, scene: np.ndarray) -> np.ndarray:
        """Which scene points lie on the stage: the box plus a 10 % margin, at sane heights.

        A run that leaves it (an overshoot, a divergence) is not drawn out there: its path
        would be a line into the sky, and 1e300 does not survive float32 anyway.
        """
        hx, hy = self._half
        return (
            (np.abs(scene[:, 0]) <= 1.1 * hx)
            & (np.abs(scene[:, 1]) <= 1.1 * hy)
            & (scene[:, 2] >= -0.1 * SCENE_HEIGHT)
            & (scene[:, 2] <= 1.5 * SCENE_HEIGHT)
        )

    @staticmethod
    def _segments(scene: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """Line pairs (2m, 3) between consecutive points that are both on the stage."""
        if len(scene) < 2:
            return np.empty((0, 3), dtype=np.float32)
        keep = inside[:-1] & inside[1:]
        pairs = np.stack([scene[:-1][keep], scene[1:][keep]], axis=1)
        return pairs.reshape(-1, 3).astype(np.float32)

    def _ball_centre(self, p: np.ndarray, zi: float) -> np.ndarray | None:
        """Where the ball's centre goes: on the drawn mesh, pushed out along its normal.

        Off the surface's box but on the stage it floats at its loss; off the stage, None.
        """
        if not np.isfinite(p).all():
            return None
        x, y = float(p[0]), float(p[1])
        if self._x[0] <= x <= self._x[-1] and self._y[0] <= y <= self._y[-1]:
            sx, sy = self._xy_to_scene(p)
            sz = float(self._surface_height(x, y))
            nrm = bilinear(self._x, self._y, self._normals_grid, x, y)
            nrm /= max(float(np.linalg.norm(nrm)), 1e-12)
            return np.array([sx, sy, sz]) + BALL_RADIUS * nrm
        s = self.to_scene(x, y, zi).reshape(1, 3)
        if not (np.isfinite(s).all() and self._in_stage(s)[0]):
            return None
        return s[0] + np.array([0.0, 0.0, BALL_RADIUS])

    def _draw_crosses(self, crosses: list[tuple[np.ndarray, tuple]]) -> None:
        """An X in the run's colour where a diverged run was last seen (a 3-D asterisk, so it
        reads as an X from any camera angle)."""
        if not crosses:
            self._crosses.hide()
            return
        c = np.asarray([p for p, _ in crosses])
        d = 1.3 * BALL_RADIUS
        offs = np.array(
            [
                [-d, -d, 0],
                [d, d, 0],
                [-d, d, 0],
                [d, -d, 0],
                [0, -d, -d],
                [0, d, d],
                [-d, 0, d],
                [d, 0, -d],
            ]
        )
        pos = (c[:, None, :] + offs[None]).reshape(-1, 3)
        colors = np.repeat(np.asarray([col for _, col in crosses]), len(offs), axis=0)
        self._crosses.setData(pos=pos.astype(np.float32), color=colors.astype(np.float32))
        self._crosses.show()

    def _draw_arrows(self, positions, centres, gradients, velocities, steps) -> None:
        vectors = {"gradient": gradients, "velocity": velocities, "step": steps}
        ok = np.isfinite(centres).all(axis=1)
        span = 2.0 / self._xy_factor
        for kind, item in self._arrows.items():
            v = vectors[kind]
            if not self._overlay_on[kind] or v is None or not ok.any():
                item.hide()
                continue
            v = np.asarray(v, dtype=np.float64).reshape(-1, 2)[ok]
            if kind == "gradient":
                v = -v
            seg = arrow_segments(positions[ok], scale_arrows(v, 0.12 * span))
            self._set_lines(item, self._drape(seg))

    def _drape(self, seg: np.ndarray, pieces: int = 12) -> np.ndarray:
        """Segments in data (x, y) -> scene line pairs that follow the surface at ball height."""
        if len(seg) == 0:
            return np.empty((0, 3), dtype=np.float32)
        t = np.linspace(0.0, 1.0, pieces + 1)
        pts = seg[:, :1, :] + t[None, :, None] * (seg[:, 1:, :] - seg[:, :1, :])  # (m, p+1, 2)
        flat = pts.reshape(-1, 2)
        scene = np.empty((len(flat), 3))
        scene[:, :2] = self._xy_to_scene(flat)
        scene[:, 2] = self._surface_height(flat[:, 0], flat[:, 1]) + BALL_RADIUS
        scene = scene.reshape(len(seg), pieces + 1, 3)
        pairs = np.stack([scene[:, :-1], scene[:, 1:]], axis=2)  # (m, p, 2, 3)
        return pairs.reshape(-1, 3).astype(np.float32)

    # ----------------------------------------------------------------------------- overlays
    def set_overlay_visible(self, kind: str, visible: bool) -> None:
        """Toggle an arrow overlay: one of OVERLAY_KINDS ("gradient", "velocity", "step")."""
        if kind not in self._overlay_on:
            raise ValueError(f"Unknown overlay {kind!r}; choose one of {', '.join(OVERLAY_KINDS)}")
        self._overlay_on[kind] = bool(visible)
        if not visible:
            self._arrows[kind].hide()
        elif self._last_frame is not None:
            self.update_runs(**self._last_frame)

    def overlay_visible(self, kind: str) -> bool:
        return self._overlay_on[kind]

    # ------------------------------------------------------------------------------ camera
    def _fit_distance(self, aspect_hw: float) -> float:
        """Camera distance at which the scene box and its floor labels just fit a view of this
        height/width, for the current camera direction and centre (exact for perspective)."""
        hx, hy = self._half
        m = 0.25  # the floor's tick labels reach about this far beyond the box
        pts = [
            (sx * (hx + m), sy * (hy + m), -0.06 * SCENE_HEIGHT) for sx in (-1, 1) for sy in (-1, 1)
        ] + [(sx * hx, sy * hy, SCENE_HEIGHT) for sx in (-1, 1) for sy in (-1, 1)]
        opts = self._gl.opts
        rot = QMatrix4x4()
        rot.rotate(opts["elevation"] - 90, 1, 0, 0)
        rot.rotate(opts["azimuth"] + 90, 0, 0, -1)
        c = opts["center"]
        tan_h = math.tan(math.radians(opts["fov"]) / 2)
        tan_v = tan_h * aspect_hw
        fill = 0.94
        need = 0.0
        for p in pts:
            q = rot.map(QVector3D(p[0] - c.x(), p[1] - c.y(), p[2] - c.z()))
            need = max(
                need, q.z() + abs(q.x()) / (fill * tan_h), q.z() + abs(q.y()) / (fill * tan_v)
            )
        return need

    def _aspect(self) -> float:
        w, h = self._gl.width(), self._gl.height()
        return h / w if w > 0 and h > 0 else 0.75

    def reset_camera(self) -> None:
        """Back to the default three-quarter view with the whole surface in frame."""
        self.set_camera_preset("default")

    def set_camera_preset(self, name: str) -> None:
        """Camera presets: default (three-quarter), top (x right, y up), side-x (x-z plane),
        side-y (y-z plane). The whole surface is in frame after each."""
        angles = {
            "default": (40.0, -62.0),
            "top": (90.0, -90.0),
            "side-x": (0.0, -90.0),
            "side-y": (0.0, 0.0),
        }
        if name not in angles:
            raise ValueError(
                f"Unknown camera preset {name!r}; choose one of {', '.join(CAMERA_PRESETS)}"
            )
        elevation, azimuth = angles[name]
        self._gl.setCameraPosition(
            pos=QVector3D(0.0, 0.0, 0.3 * SCENE_HEIGHT), elevation=elevation, azimuth=azimuth
        )
        self._gl.setCameraPosition(distance=self._fit_distance(self._aspect()))
        self._auto_fit = True

    def eventFilter(self, watched, event) -> bool:
        """Keep a fitted camera fitted as the dock resizes, until the person takes the camera."""
        if watched is self._gl:
            kind = event.type()
            if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.Wheel, QEvent.Type.KeyPress):
                self._auto_fit = False
            elif kind == QEvent.Type.Resize and self._auto_fit:
                self._gl.setCameraPosition(distance=self._fit_distance(self._aspect()))
        return super().eventFilter(watched, event)

    def camera(self) -> dict:
        """Camera parameters (center, distance, fov, elevation, azimuth) for saving a view."""
        return self._gl.cameraParams()

    def set_camera(self, **params) -> None:
        """Restore what camera() returned."""
        self._gl.setCameraParams(**params)

    # ------------------------------------------------------------------------------ export
    def render_image(self, width: int, height: int) -> QImage:
        """Render the current view at width x height pixels (any size, e.g. 2x or 4K).

        Strokes and point sizes grow with the size, so a 4K export looks like the screen, and
        images up to about 4 megapixels are rendered at twice the size and scaled down for
        smooth edges. The camera distance is adapted to the image's shape (the same zoom
        relative to a fitted view). Needs the view to have been shown once (a GL context).
        """
        width, height = int(width), int(height)
        if width <= 0 or height <= 0:
            raise ValueError(f"Image size must be positive, got {width}x{height}")
        if not self._gl.isValid():
            raise RuntimeError("The 3-D view has no OpenGL context yet: show it before rendering")
        ss = 2 if width * height <= 4_200_000 else 1
        rw, rh = width * ss, height * ss
        # Keep the zoom relative to a fitted view, so a wide export of a tall dock is framed
        # for its own shape instead of cropped or shrunk.
        backoff = self._fit_distance(height / width) / self._fit_distance(self._aspect())
        # Lines, points and labels keep their size relative to the scene, as on screen.
        stroke = ss * width / max(1, self._gl.width()) / backoff
        with self._export_state(stroke, backoff):
            arr = self._gl.renderToArray((rw, rh))
            labels = self._project_labels(rw, rh)
        self._gl.update()
        arr = np.ascontiguousarray(arr)
        image = QImage(arr.data, rw, rh, rw * 4, QImage.Format.Format_RGB32).copy()
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        for (px, py), text, item in labels:
            font = QFont(item.font)
            font.setPointSizeF(item.font.pointSizeF() * stroke)
            painter.setFont(font)
            painter.setPen(item.color)
            rect = painter.fontMetrics().tightBoundingRect(text)
            painter.drawText(QPointF(px - rect.width() / 2, py + rect.height() / 2), text)
        painter.end()
        if ss != 1:
            image = image.scaled(
                width,
                height,
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        return image

    @contextmanager
    def _export_state(self, stroke: float, backoff: float):
        lines = [it for it in self._gl.items if isinstance(it, gl.GLLinePlotItem)]
        points = [it for it in self._gl.items if isinstance(it, gl.GLScatterPlotItem)]
        widths = [it.width for it in lines]
        sizes = [it.size for it in points]
        texts = [self._label_layer] if self._label_layer.visible() else []
        distance = self._gl.opts["distance"]
        try:
            for it, w in zip(lines, widths, strict=True):
                it.width = w * stroke
            for it, s in zip(points, sizes, strict=True):
                it.size = s * stroke
            for it in texts:  # GLTextItem paints on the widget, not into the export buffer
                it.hide()
            self._gl.opts["distance"] = distance * backoff
            yield
        finally:
            for it, w in zip(lines, widths, strict=True):
                it.width = w
            for it, s in zip(points, sizes, strict=True):
                it.size = s
            for it in texts:
                it.show()
            self._gl.opts["distance"] = distance

    def _project_labels(self, w: int, h: int):
        proj = self._gl.projectionMatrix((0, 0, w, h), (0, 0, w, h))
        mvp = proj * self._gl.viewMatrix()
        out = []
        for (pos, text), item in zip(self._labels, self._label_items, strict=True):
            ndc = mvp.map(QVector3D(*map(float, pos)))
            if abs(ndc.z()) > 1:
                continue
            out.append((((ndc.x() + 1) * 0.5 * w, (1 - ndc.y()) * 0.5 * h), text, item))
        return out

    def project(self, scene_points: np.ndarray) -> np.ndarray:
        """Widget pixel coordinates (n, 2) of scene points (n, 3), for tests and tooltips."""
        w, h = self._gl.width(), self._gl.height()
        proj = self._gl.projectionMatrix((0, 0, w, h), (0, 0, w, h))
        mvp = proj * self._gl.viewMatrix()
        out = []
        for p in np.asarray(scene_points, dtype=np.float64).reshape(-1, 3):
            ndc = mvp.map(QVector3D(*map(float, p)))
            out.append(((ndc.x() + 1) * 0.5 * w, (1 - ndc.y()) * 0.5 * h))
        return np.asarray(out).reshape(-1, 2)
