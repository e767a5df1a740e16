"""The root schema: queries and mutations over the engine, with production settings.

The query cost (api/cost.py) is checked after validation, before any resolver runs.
Validation rules (depth, aliases) are built ONCE at import and added through a single
``AddValidationRules``: Strawberry's ValidationCache keys on the rule classes, and limiters
passed as factories would build new classes per request so the cache would never hit.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from api.context import Context
from api.cost import CostLimiter
from api.errors import code_of
from api.execution import LeafExecutor
from api.limits import CostBudget
from api.types import (
    InteractionInput,
    InteractionResult,
    Item,
    ItemInput,
    ModelVersion,
    RecommendationFilter,
    RecommendationList,
    RequestContext,
    StoredIn,
    Surface,
    User,
    UserInput,
    UserRecommendations,
    check_first,
    recommendations,
)
from graphrec.core.config import ApiSettings
from graphrec.core.errors import GraphrecError, NotFound, ValidationError
from graphrec.core.recs import types as et

Info = strawberry.Info[Context, None]
log = logging.getLogger("graphrec.api")


def _read(info: Info) -> None:
    info.context.principal.require("read")


def _write(info: Info) -> None:
    info.context.principal.require("write")


@strawberry.type
class Query:
    @strawberry.field(description="Ranked recommendations for a user; an unknown user is a cold-start user.")
    async def recommendations(self, info: Info, user_id: strawberry.ID, surface: Surface = Surface.HOME_FEED,
                              first: int = 20, filter: RecommendationFilter | None = None,
                              context: RequestContext | None = None) -> RecommendationList:
        _read(info)
        check_first(first)
        req = et.RecRequest(str(user_id), et.Surface(surface.value), first,
                            filter.to_domain() if filter else et.RecFilter(),
                            context.to_domain() if context else et.RequestContext())
        return await RecommendationList.from_domain(info, await info.context.engine.recommend(req))

    @strawberry.field(description="Items similar to an item (never the item itself). Unknown item: NOT_FOUND.")
    async def similar_items(self, info: Info, item_id: strawberry.ID, first: int = 20,
                            filter: RecommendationFilter | None = None) -> RecommendationList:
        _read(info)
        check_first(first)
        res = await info.context.engine.similar_items(str(item_id), first, filter.to_domain() if filter else None)
        return await RecommendationList.from_domain(info, res)

    @strawberry.field(description="Reorder a list of item ids (search results) for a user.")
    async def rerank(self, info: Info, user_id: strawberry.ID, item_ids: list[strawberry.ID],
                     first: int | None = None) -> RecommendationList:
        _read(info)
        if len(item_ids) > 1000:
            raise ValidationError("at most 1,000 ids", field="itemIds")
        check_first(first, maximum=1000)
        res = await info.context.engine.rerank(str(user_id), [str(i) for i in item_ids], first)
        return await RecommendationList.from_domain(info, res)

    @strawberry.field(description="Recommendations for up to 1,000 users (email campaigns).")
    async def batch_recommendations(self, info: Info, user_ids: list[strawberry.ID], first: int = 20,
                                    surface: Surface = Surface.EMAIL) -> list[UserRecommendations]:
        _read(info)
        if len(user_ids) > 1000:
            raise ValidationError("at most 1,000 users", field="userIds")
        check_first(first)
        res = await info.context.engine.batch([str(u) for u in user_ids], first, et.Surface(surface.value))
        # Every user's items in one read: one DataLoader batch for the whole campaign.
        recs = await recommendations(info, [x for r in res.values() for x in r.items], ("recommendations", "items", "item"))
        out, k = [], 0
        for u, r in res.items():
            out.append(UserRecommendations(user_id=strawberry.ID(u), recommendations=RecommendationList.of(r, recs[k:k + len(r.items)])))
            k += len(r.items)
        return out

    @strawberry.field(description="Popular items right now, overall or in one category.")
    async def popular_items(self, info: Info, first: int = 20, category: str | None = None) -> list[Item]:
        _read(info)
        check_first(first)
        ids = await info.context.engine.popular(first, category)
        items = await info.context.items.load_many(ids)
        return [Item.from_domain(i) for i in items if i is not None]

    @strawberry.field
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        _read(info)
        u = await info.context.engine.get_user(str(id))
        return User.from_domain(u) if u else None

    @strawberry.field
    async def item(self, info: Info, id: strawberry.ID) -> Item | None:
        _read(info)
        it = await info.context.items.load(str(id))
        return Item.from_domain(it) if it else None

    @strawberry.field
    async def model_versions(self, info: Info, first: int = 10) -> list[ModelVersion]:
        _read(info)
        check_first(first)
        return [ModelVersion.from_domain(v) for v in await info.context.engine.model_versions(first)]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Record an interaction; the next request for this user reflects it.")
    async def record_interaction(self, info: Info, input: InteractionInput) -> InteractionResult:
        info.context.principal.require("write", "interact")  # interact: widgets' keys, this mutation only
        res = await info.context.engine.record_interaction(input.to_domain(time.time()))
        return InteractionResult(key=res.key, created=res.created, stored=StoredIn(res.stored.upper()))

    @strawberry.mutation
    async def upsert_item(self, info: Info, input: ItemInput) -> Item:
        _write(info)
        return Item.from_domain(await info.context.engine.upsert_item(input.to_domain()))

    @strawberry.mutation
    async def upsert_user(self, info: Info, input: UserInput) -> User:
        _write(info)
        return User.from_domain(await info.context.engine.upsert_user(input.to_domain()))


class ErrorCodes(SchemaExtension):
    """Every error carries ``extensions.code`` (api/errors.py: ``code_of``); INTERNAL ones are
    masked (no stack trace, no driver message; ``Schema.process_errors`` logged them)."""

    def on_operation(self) -> Any:
        yield
        result = self.execution_context.result
        if not result or not result.errors:
            return
        fixed = []
        for err in result.errors:
            orig = err.original_error
            code = code_of(orig)
            msg = str(orig) if isinstance(orig, GraphrecError) else err.message
            if code == "INTERNAL":
                msg = "internal error"
            fixed.append(GraphQLError(msg, nodes=err.nodes, source=err.source, positions=err.positions, path=err.path,
                                      extensions={"code": code}))
        result.errors = fixed


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log what is a bug (INTERNAL), with its traceback; a client's mistake is answered, not
        logged (Strawberry's default logs every error with a traceback)."""
        for err in errors:
            if code_of(err.original_error) == "INTERNAL":
                log.error("internal error in %s", err.path, exc_info=err.original_error)


def build_schema(cfg: ApiSettings) -> strawberry.Schema:
    rules = [*QueryDepthLimiter(max_depth=cfg.max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=cfg.max_aliases).validation_rules]
    if not cfg.introspection:
        from graphql.validation import NoSchemaIntrospectionCustomRule

        rules.append(NoSchemaIntrospectionCustomRule)
    budget = CostBudget(cfg.cost_per_window, cfg.cost_window_s)  # one per process: the window spans requests
    return Schema(
        query=Query, mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=LeafExecutor,
        extensions=[
            lambda: AddValidationRules(rules),  # the same rule classes every request: the cache hits
            lambda: MaxTokensLimiter(max_token_count=cfg.max_tokens),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: CostLimiter(max_cost=cfg.max_query_cost, budget=budget),
            ErrorCodes,
        ],
    )


__all__ = ["build_schema", "NotFound"]
