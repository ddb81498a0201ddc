"""Deterministic stand-ins for an LLM: a text generator, a scripted chat model, two tools.

Everything is seeded so that every saver sees byte-identical conversations, and the text
is made of ordinary English words so that compression behaves as it would on real chat
(a run of one repeated character would compress to almost nothing and flatter every
saver that compresses).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, InjectedToolCallId, tool

# A few hundred common English words. Every length from 1 to 11 occurs, which lets
# `sentence_text` hit an exact character count without cutting a word.
_WORDS = """
    a i an as at be by do go he if in is it me my no of on or so to up us we am ok
    all and any are ask big but can day did end far few for get got had has her him his
    how its let lot may new not now old one our out own put run say see set she sit the
    too two use was way who why yes yet you able also back been best both call came come
    does done down each even ever fact feel find food form from full gave give good hand
    have head help here high hold home hope idea into just keep kind knew know last late
    left less life like line list live long look made make many mean more most move much
    must name near need next note once only open over part plan play read real rest room
    said same seem show side some soon sure take talk tell than that them then they this
    time told took turn very wait walk want week well went were what when will with word
    work year your about above after again being below bring build carry clear close
    could early every first found given going great group happy heard house large later
    learn leave light might money never night order other place point quite right round
    short since small sound start state still story study table thing think three today
    under until using value watch water where which while whole world would write young
    across almost always answer around became become before better change choose course
    during enough family father follow friend giving ground health letter little mother
    moving number office people person please simple should social spring system things
    toward travel enough within window without another because between brother central
    certain company country example general however husband instead kitchen machine
    morning nothing perhaps problem program project reading several special student
    teacher thought through together usually weather whether working anything building
    business children complete consider continue describe evidence everyone exercise
    question remember research response standard anything possible practice national
    community different direction important interest knowledge political something
    sometimes according attention certainly character condition education everybody
    everything including available beautiful determine difference experience generation
    government individual investment successful understand technology particular
    information development environment opportunity performance relationship significant
"""
VOCABULARY: tuple[str, ...] = tuple(dict.fromkeys(_WORDS.split()))
_BY_LENGTH: dict[int, tuple[str, ...]] = {
    n: tuple(w for w in VOCABULARY if len(w) == n) for n in {len(w) for w in VOCABULARY}
}
_MAX_WORD = 11
assert all(n in _BY_LENGTH for n in range(1, _MAX_WORD + 1))


def sentence_text(chars: int, seed: int | str, *, end: str = ".") -> str:
    """Exactly ``chars`` characters of sentences made of vocabulary words, seeded."""
    if chars < 2:
        raise ValueError("need at least 2 characters")
    rng = random.Random(seed)
    body = chars - len(end)
    parts: list[str] = []
    length = 0
    capitalize = True
    # Random words until the rest fits in two words, then two words of exact lengths.
    while body - length > 2 * _MAX_WORD + 1:
        word = rng.choice(VOCABULARY)
        if capitalize:
            word = word.capitalize()
        capitalize = rng.random() < 0.08
        if capitalize:
            word += "."
        piece = word if not parts else " " + word
        parts.append(piece)
        length += len(piece)
    rest = body - length
    sep = 1 if parts else 0
    # Split `rest` into [sep] + word + " " + word, each word 1.._MAX_WORD long.
    if rest - sep < 3:  # no room for two words: one word fills it
        lengths = [rest - sep]
    else:
        first = rng.randint(max(1, rest - sep - 1 - _MAX_WORD), min(_MAX_WORD, rest - sep - 2))
        lengths = [first, rest - sep - 1 - first]
    for i, n in enumerate(lengths):
        word = rng.choice(_BY_LENGTH[n])
        if capitalize and i == 0:
            word = word.capitalize()
        parts.append(word if (i == 0 and not sep) else " " + word)
    text = "".join(parts) + end
    assert len(text) == chars, (len(text), chars)
    return text


def question_text(turn: int, seed: int = 0, chars: int = 200) -> str:
    """The user's message in ``turn``."""
    return sentence_text(chars, f"q-{seed}-{turn}", end="?")


def answer_text(turn: int, seed: int = 0, chars: int = 800) -> str:
    """The assistant's final answer in ``turn``."""
    return sentence_text(chars, f"a-{seed}-{turn}")


def user_message(turn: int, seed: int = 0, chars: int = 200) -> HumanMessage:
    """The user's message in ``turn``, with a deterministic id (so runs compare equal)."""
    return HumanMessage(content=question_text(turn, seed, chars), id=f"human-{turn}")


# --- the tool agent -------------------------------------------------------------------


@tool
def search(query: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> ToolMessage:
    """Look something up and return a paragraph about it."""
    # Returning the ToolMessage ourselves gives it a deterministic id.
    return ToolMessage(
        content=sentence_text(400, f"search-{query}"),
        tool_call_id=tool_call_id,
        name="search",
        id=f"tool-{tool_call_id}",
    )


@tool
def calculator(a: int, b: int, tool_call_id: Annotated[str, InjectedToolCallId]) -> ToolMessage:
    """Multiply two integers."""
    return ToolMessage(
        content=str(a * b), tool_call_id=tool_call_id, name="calculator", id=f"tool-{tool_call_id}"
    )


TOOLS: list[BaseTool] = [search, calculator]


class ScriptedChatModel(BaseChatModel):
    """A chat model that follows a fixed schedule instead of thinking.

    In every ``tool_every``-th turn (counting user messages) it first asks for tools —
    several in parallel in every ``parallel_every``-th of those turns — and answers once
    the tool results are in; in the other turns it answers at once.
    """

    seed: int = 0
    answer_chars: int = 800
    tool_every: int = 2
    parallel_every: int = 3
    parallel_calls: int = 3

    @property
    def _llm_type(self) -> str:
        return "scripted-benchmark-model"

    def _generate(
        self,
        messages: Sequence[BaseMessage],  # type: ignore[override]
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = sum(isinstance(m, HumanMessage) for m in messages)
        if isinstance(messages[-1], HumanMessage) and self.wants_tools(turn):
            message = AIMessage(content="", tool_calls=self.tool_calls(turn), id=f"ai-{turn}-call")
        else:
            message = AIMessage(
                content=answer_text(turn, self.seed, self.answer_chars), id=f"ai-{turn}"
            )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def wants_tools(self, turn: int) -> bool:
        """Whether ``turn`` (1-based) goes through the tools."""
        return self.tool_every > 0 and turn % self.tool_every == 0

    def tool_calls(self, turn: int) -> list[dict[str, Any]]:
        """The calls made in ``turn``: alternately one search, or several tools at once."""
        tool_turn = turn // self.tool_every
        count = self.parallel_calls if tool_turn % self.parallel_every == 0 else 1
        calls: list[dict[str, Any]] = []
        for i in range(count):
            call_id = f"call-{turn}-{i}"
            if i % 2 == 0:
                args: dict[str, Any] = {"query": question_text(turn * 10 + i, self.seed, 40)}
                calls.append({"name": "search", "args": args, "id": call_id, "type": "tool_call"})
            else:
                args = {"a": turn, "b": i + 7}
                calls.append(
                    {"name": "calculator", "args": args, "id": call_id, "type": "tool_call"}
                )
        return calls
