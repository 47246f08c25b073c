"""Rules a person can read, check and run, extracted from trained networks.

- :mod:`nesy.rules.ruleset`: :class:`RuleSet` (ordered if-then rules with a default rule;
  text, JSON and Python-function export), :class:`Rule`, :class:`Condition`;
- :mod:`nesy.rules.pedagogical`: TREPAN-style extraction that queries the model as an oracle;
- :mod:`nesy.rules.decompositional`: DeepRED-style extraction layer by layer from a ReLU
  network's weights;
- :mod:`nesy.rules.report`: fidelity / accuracy / size table against CART;
- :mod:`nesy.rules.kg`: Horn rules mined from knowledge graphs (:func:`mine`,
  :class:`KGRuleSet` with prediction, explanations and filtered evaluation, exact AMIE metrics
  with :func:`rule_metrics`); :mod:`nesy.rules.kg_format` their text and JSON files;
  :mod:`nesy.rules.hybrid` rules combined with knowledge-graph embeddings.
"""

from nesy.rules.decompositional import DecompositionalRuleExtractor
from nesy.rules.kg import KGRuleSet, mine, rule_metrics
from nesy.rules.pedagogical import PedagogicalRuleExtractor
from nesy.rules.ruleset import Condition, Rule, RuleSet

__all__ = ["Condition", "Rule", "RuleSet", "PedagogicalRuleExtractor",
           "DecompositionalRuleExtractor", "KGRuleSet", "mine", "rule_metrics"]
