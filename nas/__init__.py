"""nas: the neural architecture search agent of superneurons.

Search spaces (``Space``, ``Real``, ``Int``, ``Categorical``, cell spaces),
strategies behind one ask/tell interface (``suggest`` / ``observe``), schedulers
that pick fidelities, and ``optimize`` / ``resume`` that run trials inline, in
local processes or on Dask, with an append-only journal.

>>> import nas
>>> f = nas.synthetic("ackley", 4)
>>> res = nas.optimize(f, f.space, strategy="random", budget=10, seed=0,
...                    maximize=False, executor="inline")
>>> res.n_finished
10
"""

from nas import spaces
from nas._asha import ASHA
from nas._bo import BayesOpt
from nas._cells import CellActions, CellSpace, chain_space, nasbench201_space
from nas._errors import JournalError, JournalLockedError, SearchFailedError
from nas._evolution import RegularizedEvolution
from nas._gp import GP
from nas._hyperband import Hyperband, hyperband_brackets
from nas._journal import read_journal
from nas._lamcts import LAMCTS
from nas._lanas import LaNAS
from nas._mcts import AlphaX, SequentialActions
from nas._objectives import SYNTHETIC, Synthetic, synthetic
from nas._optimize import load_objective, optimize, resume
from nas._params import Categorical, Int, Param, Real
from nas._pareto import pareto_front
from nas._random import RandomSearch
from nas._registry import STRATEGIES, make_strategy
from nas._report import TrialPruned, report
from nas._space import Config, Space, strip_meta
from nas._strategy import Strategy
from nas._table import TableObjective, build_table, load_table
from nas._train import TrainObjective, load_dataset
from nas._trial import Result, Trial
from nas._turbo import TuRBO

__all__ = [
    "ASHA",
    "GP",
    "LAMCTS",
    "STRATEGIES",
    "SYNTHETIC",
    "AlphaX",
    "BayesOpt",
    "Categorical",
    "CellActions",
    "CellSpace",
    "Config",
    "Hyperband",
    "Int",
    "JournalError",
    "JournalLockedError",
    "LaNAS",
    "Param",
    "RandomSearch",
    "Real",
    "RegularizedEvolution",
    "Result",
    "SearchFailedError",
    "SequentialActions",
    "Space",
    "Strategy",
    "Synthetic",
    "TableObjective",
    "TrainObjective",
    "Trial",
    "TrialPruned",
    "TuRBO",
    "build_table",
    "chain_space",
    "hyperband_brackets",
    "load_dataset",
    "load_objective",
    "load_table",
    "make_strategy",
    "nasbench201_space",
    "optimize",
    "pareto_front",
    "read_journal",
    "report",
    "resume",
    "spaces",
    "strip_meta",
    "synthetic",
]
