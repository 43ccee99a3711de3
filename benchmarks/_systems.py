"""One adapter per benchmarked system: the same fit/predict face for all.

Every adapter gets the training ratings as three NumPy arrays (user ids, item
ids, ratings) and the test pairs as two, and does all its own conversion to
the library's input format inside ``fit`` and ``predict``, so that both times
count from in-memory arrays to a fitted model and to a NumPy array of
predictions. Imports happen in ``prepare`` (not timed). Spark's session start
is in ``setup`` and reported apart as ``startup_s``.

Users or items missing from the training set are predicted by every system
the same way where the library cannot do it itself: the training mean plus
whatever bias is known.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import time

import numpy as np
import pandas as pd

SYSTEMS = ("skmf", "surprise", "libmf", "cornac", "spark", "torch-recipe")

#: module that must be importable for each system.
_MODULES = {
    "skmf": "skmf",
    "surprise": "surprise",
    "libmf": "libmf",
    "cornac": "cornac",
    "spark": "pyspark",
    "torch-recipe": "torch",
}


def availability(system: str) -> str | None:
    """None if the system can run here, else why not."""
    module = _MODULES[system]
    if importlib.util.find_spec(module) is None:
        return f"not installed (no module {module!r})"
    if system == "spark" and shutil.which("java") is None:
        return "not installed (no java on PATH)"
    return None


def _encode(train_ids: np.ndarray):
    """0-based codes of the training ids, and the index to encode queries."""
    codes, uniques = pd.factorize(train_ids, sort=True)
    return codes.astype(np.int64), pd.Index(uniques)


class Adapter:
    name = ""
    #: sample the RSS of child processes (the JVM) during fit.
    child_memory = False

    def __init__(self, params: dict | None = None, device: str = "cpu"):
        self.params = dict(params or {})
        self.device = device
        self.notes: list[str] = []
        self.info: dict = {}

    def prepare(self) -> None:
        """Import the library (not timed)."""

    def setup(self) -> float | None:
        """Start-up cost outside ``fit`` (seconds), or None."""
        return None

    def settings(self) -> str:
        raise NotImplementedError

    def fit(self, users, items, ratings) -> None:
        raise NotImplementedError

    def predict(self, users, items) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------- skmf
class SkmfAdapter(Adapter):
    name = "skmf"

    def prepare(self):
        from skmf import MFRegressor

        self._cls = MFRegressor
        kwargs = {"random_state": 0, **self.params}
        kwargs.setdefault("device", self.device)
        self.kwargs = kwargs
        self.estimator = MFRegressor(**kwargs)

    def settings(self):
        p = self.estimator.get_params()
        defaults = self._cls().get_params()
        shown = (
            "solver", "n_components", "alpha", "alpha_scaling", "max_iter", "tol",
            "init",
        )  # fmt: skip
        if p["solver"] == "gibbs":  # learns its penalties, runs max_iter sweeps
            shown += ("alpha_bias",)
            text = (
                f"gibbs k={p['n_components']} init={p['init']} "
                f"max_iter={p['max_iter']} (posterior mean)"
            )
        else:
            text = (
                f"{p['solver']} k={p['n_components']} alpha={p['alpha']} "
                f"({p['alpha_scaling']}) init={p['init']} "
                f"max_iter={p['max_iter']} tol={p['tol']}"
            )
        extra = [
            f"{k}={v}"
            for k, v in sorted(p.items())
            if k not in shown
            and k not in ("device", "random_state")
            and v != defaults[k]
        ]
        if extra:
            text += " " + " ".join(extra)
        return text

    def fit(self, users, items, ratings):
        X = np.column_stack([users, items])
        with self._timed_iterations() as times:
            self.estimator.fit(X, ratings)
        self.info["n_iter"] = int(self.estimator.n_iter_)
        if times:
            # One ALS sweep or SGD/Adam epoch alone (median), without the
            # set-up and the start that fit_s / n_iter also spreads in.
            self.info["iter_s"] = float(np.median(times))

    @contextlib.contextmanager
    def _timed_iterations(self):
        """Time each call of the solver's step (CUDA synchronised)."""
        import torch

        from skmf._solvers import _engine

        times: list[float] = []
        original = _engine.run_fit_loop
        cuda = torch.cuda.is_available()

        def run_fit_loop(step, *args, **kwargs):
            def timed_step(iteration):
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                out = step(iteration)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
                return out

            return original(timed_step, *args, **kwargs)

        _engine.run_fit_loop = run_fit_loop
        try:
            yield times
        finally:
            _engine.run_fit_loop = original

    def predict(self, users, items):
        return self.estimator.predict(np.column_stack([users, items]))


# ------------------------------------------------------------------ surprise
class SurpriseAdapter(Adapter):
    name = "surprise"

    def prepare(self):
        import surprise

        self._surprise = surprise
        self.notes.append("predict: algo.test loop; clips to rating scale")

    def settings(self):
        return "SVD() defaults: k=100 20 epochs lr=.005 reg=.02, random_state=0"

    def fit(self, users, items, ratings):
        s = self._surprise
        df = pd.DataFrame({"user": users, "item": items, "rating": ratings})
        reader = s.Reader(rating_scale=(float(ratings.min()), float(ratings.max())))
        trainset = s.Dataset.load_from_df(df, reader).build_full_trainset()
        self.algo = s.SVD(random_state=0, **self.params)
        self.algo.fit(trainset)

    def predict(self, users, items):
        testset = [(u, i, 0.0) for u, i in zip(users.tolist(), items.tolist())]
        return np.array([p.est for p in self.algo.test(testset)], dtype=np.float64)


# --------------------------------------------------------------------- libmf
class LibmfAdapter(Adapter):
    name = "libmf"
    K, ITERS, ETA, LAMBDA, THREADS = 64, 20, 0.05, 0.05, 2

    def prepare(self):
        import contextlib
        import io

        # The binding prints the path of its shared object on import.
        with contextlib.redirect_stdout(io.StringIO()):
            from libmf import mf
        self._mf = mf
        self.notes.append("centred on train mean; predict query Fortran-order")

    def settings(self):
        return (
            f"k={self.K} {self.ITERS} it eta={self.ETA} L2 lambda={self.LAMBDA} "
            f"{self.THREADS} threads, centred"
        )

    def fit(self, users, items, ratings):
        uc, self.uindex = _encode(users)
        ic, self.iindex = _encode(items)
        self.mean = float(ratings.mean())
        data = np.empty((len(ratings), 3), dtype=np.float32)
        data[:, 0], data[:, 1], data[:, 2] = uc, ic, ratings - self.mean
        # lambda_p2/q2 are LIBMF's L2 penalties (p1/q1 are its L1 penalties).
        self.model = self._mf.MF(
            k=self.K,
            nr_iters=self.ITERS,
            eta=self.ETA,
            lambda_p1=0.0,
            lambda_q1=0.0,
            lambda_p2=self.LAMBDA,
            lambda_q2=self.LAMBDA,
            nr_threads=self.THREADS,
            quiet=True,
        )
        self.model.fit(data)

    def predict(self, users, items):
        # Unknown ids get code -1: LIBMF returns its mean b (~0 when centred).
        uc = self.uindex.get_indexer(users)
        ic = self.iindex.get_indexer(items)
        # The binding reads the (n, 2) query column-major.
        pairs = np.asfortranarray(np.column_stack([uc, ic]).astype(np.float32))
        return self.model.predict(pairs).astype(np.float64) + self.mean


# -------------------------------------------------------------------- cornac
class CornacAdapter(Adapter):
    name = "cornac"

    def prepare(self):
        import cornac
        from cornac.data import Dataset

        self._MF, self._Dataset = cornac.models.MF, Dataset
        self.notes.append("predict vectorized from the model arrays (MF.score formula)")

    def settings(self):
        return "MF(k=10) defaults: sgd 20 it lr=.01 lambda=.02 bias, 2 threads"

    def fit(self, users, items, ratings):
        triples = list(zip(users.tolist(), items.tolist(), ratings.tolist()))
        self.ds = self._Dataset.from_uir(triples)
        self.model = self._MF(k=10, **self.params)
        self.model.fit(self.ds)

    def predict(self, users, items):
        m = self.model
        uc = pd.Series(users).map(self.ds.uid_map).fillna(-1).to_numpy(np.int64)
        ic = pd.Series(items).map(self.ds.iid_map).fillna(-1).to_numpy(np.int64)
        ku, ki = uc >= 0, ic >= 0
        uc0, ic0 = np.maximum(uc, 0), np.maximum(ic, 0)
        dot = np.einsum("ij,ij->i", m.u_factors[uc0], m.i_factors[ic0])
        return (
            float(m.global_mean)
            + m.u_biases[uc0] * ku
            + m.i_biases[ic0] * ki
            + dot * (ku & ki)
        ).astype(np.float64)


# --------------------------------------------------------------------- spark
class SparkAdapter(Adapter):
    name = "spark"
    child_memory = True
    RANK, MAX_ITER, REG = 10, 10, 0.1

    def prepare(self):
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)
        import pyspark  # noqa: F401
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import SparkSession

        self._ALS, self._SparkSession = ALS, SparkSession
        self.driver_memory = self.params.pop("driver_memory", "4g")
        self.notes.append(
            "fit = createDataFrame + ALS.fit; session start in startup column; "
            "peak = Python side"
        )

    def setup(self):
        import time

        start = time.perf_counter()
        self.spark = (
            self._SparkSession.builder.master("local[2]")
            .appName("skmf-benchmark")
            .config("spark.driver.memory", self.driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate()
        )
        self.spark.sparkContext.setLogLevel("ERROR")
        return time.perf_counter() - start

    def settings(self):
        return (
            f"ALS rank={self.RANK} maxIter={self.MAX_ITER} regParam={self.REG} "
            f"local[2] driver {self.driver_memory}"
        )

    def fit(self, users, items, ratings):
        self.mean = float(ratings.mean())
        df = pd.DataFrame(
            {
                "user": users.astype(np.int32),
                "item": items.astype(np.int32),
                "rating": ratings.astype(np.float32),
            }
        )
        sdf = self.spark.createDataFrame(df)
        als = self._ALS(
            rank=self.RANK,
            maxIter=self.MAX_ITER,
            regParam=self.REG,
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            coldStartStrategy="nan",
            seed=0,
            **self.params,
        )
        self.model = als.fit(sdf)

    def predict(self, users, items):
        df = pd.DataFrame(
            {
                "row": np.arange(len(users), dtype=np.int64),
                "user": users.astype(np.int32),
                "item": items.astype(np.int32),
            }
        )
        out = (
            self.model.transform(self.spark.createDataFrame(df))
            .select("row", "prediction")
            .toPandas()
        )
        pred = np.full(len(users), np.nan)
        pred[out["row"].to_numpy()] = out["prediction"].to_numpy(np.float64)
        unknown = np.isnan(pred)
        if unknown.any():
            self.notes.append(f"{int(unknown.sum())} cold-start NaN -> train mean")
            pred[unknown] = self.mean
        return pred

    def close(self):
        self.spark.stop()


# -------------------------------------------------------------- torch recipe
class TorchRecipeAdapter(Adapter):
    name = "torch-recipe"
    K, LR, BATCH, EPOCHS = 30, 1e-3, 512, 20

    def prepare(self):
        import _torch_recipe

        self._recipe = _torch_recipe

    def settings(self):
        return (
            f"nn.Embedding k={self.K} N(0,.01) Adam lr={self.LR:g} "
            f"batch {self.BATCH} {self.EPOCHS} ep"
        )

    def fit(self, users, items, ratings):
        uc, self.uindex = _encode(users)
        ic, self.iindex = _encode(items)
        self.model = self._recipe.fit_textbook(
            uc,
            ic,
            ratings,
            len(self.uindex),
            len(self.iindex),
            k=self.K,
            lr=self.LR,
            batch_size=self.BATCH,
            epochs=self.EPOCHS,
            device=self.device,
        )

    def predict(self, users, items):
        return self._recipe.predict_textbook(
            self.model, self.uindex.get_indexer(users), self.iindex.get_indexer(items)
        )


ADAPTERS = {
    cls.name: cls
    for cls in (
        SkmfAdapter,
        SurpriseAdapter,
        LibmfAdapter,
        CornacAdapter,
        SparkAdapter,
        TorchRecipeAdapter,
    )
}
