/**
 * What a frontend does with a client generated from `todo-api openapi` (openapi-typescript +
 * openapi-fetch). CI type-checks this file under `strict` against a client generated from the
 * current document: a contract change that breaks such code fails CI. It is not run.
 */
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/api";

type Schemas = components["schemas"];
export type Todo = Schemas["TodoRead"];
export type ErrorCode = Schemas["ErrorCode"];
type ErrorBody = Schemas["ErrorBody"] | Schemas["ServerErrorBody"] | Schemas["HTTPValidationError"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly retryAfterSeconds: number | null,
  ) {
    super(`${status} ${code}`);
  }
}

/** Every error body has `detail` (for people) and `code` (for programs); a 422 lists its problems. */
export function describe(error: ErrorBody): string {
  if (typeof error.detail === "string") {
    return `${error.code}: ${error.detail}`;
  }
  const problems = error.detail.map((problem) => `${problem.loc.join(".")}: ${problem.msg}`);
  return `${error.code}: ${problems.join("; ")}`;
}

function failure(response: Response, error: ErrorBody): ApiError {
  const retryAfter = response.headers.get("Retry-After");
  return new ApiError(response.status, error.code, retryAfter === null ? null : Number(retryAfter));
}

/** What a client does next, decided by `code` alone. */
export function nextStep(code: ErrorCode): "retry" | "reload" | "restart-paging" | "reauthenticate" | "fix-request" {
  switch (code) {
    case "rate_limited":
    case "idempotency_in_flight":
    case "database_unavailable":
    case "service_unavailable":
      return "retry"; // after Retry-After seconds
    case "precondition_failed":
      return "reload"; // someone else changed it: re-read, then retry with the new ETag
    case "invalid_cursor":
      return "restart-paging";
    case "unauthenticated":
      return "reauthenticate";
    default:
      return "fix-request";
  }
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

export async function flow(baseUrl: string, token: string): Promise<Todo[]> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  // A list, then a todo in it with nothing but a title (every other field has a default).
  const list = await api.POST("/api/lists", { body: { name: "Groceries" } });
  if (list.error) {
    if (list.error.code === "duplicate_name" || list.error.code === "quota_exceeded") {
      throw failure(list.response, list.error);
    }
    throw new Error(describe(list.error));
  }
  const listId: string = list.data.id;

  // Safe retries: the same Idempotency-Key replays the first 201 instead of creating a second todo.
  const idempotencyKey = crypto.randomUUID();
  let created = await api.POST("/api/todos", {
    params: { header: { "Idempotency-Key": idempotencyKey } },
    body: { title: "Buy milk" },
  });
  while (created.error?.code === "idempotency_in_flight") {
    await sleep(Number(created.response.headers.get("Retry-After") ?? "1"));
    created = await api.POST("/api/todos", {
      params: { header: { "Idempotency-Key": idempotencyKey } },
      body: { title: "Buy milk" },
    });
  }
  if (created.error) {
    throw failure(created.response, created.error);
  }
  const replayed = created.response.headers.get("Idempotent-Replayed") === "true";
  const location: string | null = created.response.headers.get("Location");
  let todo: Todo = created.data;
  let etag = created.response.headers.get("ETag") ?? "*";
  console.log(replayed ? "replayed" : "created", location, todo.priority satisfies Schemas["Priority"]);

  // PATCH with If-Match: 412 (`precondition_failed`) means someone changed it; nothing was written.
  const patched = await api.PATCH("/api/todos/{todo_id}", {
    params: { path: { todo_id: todo.id }, header: { "If-Match": etag } },
    body: { completed: true, list_id: listId, priority: "high", due_at: null },
  });
  if (patched.error) {
    if (nextStep(patched.error.code) === "reload") {
      const fresh = await api.GET("/api/todos/{todo_id}", { params: { path: { todo_id: todo.id } } });
      if (fresh.error) throw failure(fresh.response, fresh.error);
      etag = fresh.response.headers.get("ETag") ?? "*";
    }
    throw failure(patched.response, patched.error);
  }
  todo = patched.data;
  const completedAt: string | null = todo.completed_at;
  console.log(todo.id, completedAt, etag);

  // Keyset pages: follow `next_cursor` until it is null.
  const todos: Todo[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.GET("/api/todos", {
      params: {
        query: { list_id: listId, completed: true, tag: ["home"], sort: "-due_at", limit: 100, ...(cursor ? { cursor } : {}) },
      },
    });
    if (page.error) {
      if (page.error.code === "invalid_cursor") {
        cursor = undefined; // e.g. the cursor secret was rotated: start again from page 1
        todos.length = 0;
        continue;
      }
      throw new Error(describe(page.error));
    }
    todos.push(...page.data.items);
    cursor = page.data.next_cursor ?? undefined;
  } while (cursor !== undefined);

  // Lists page the same way, sorted by name.
  const lists = await api.GET("/api/lists", { params: { query: { sort: "name" } } });
  if (lists.data) {
    const counts = lists.data.items.map((item) => `${item.name}: ${item.open_count}/${item.todo_count}`);
    console.log(counts.join(", "));
  }

  // A validation error: `detail` is a list of {loc, msg, type}, `code` is `validation_failed`.
  const invalid = await api.POST("/api/todos", { body: { title: "" } });
  if (invalid.error) {
    console.log(invalid.response.status, describe(invalid.error));
  }

  const deleted = await api.DELETE("/api/todos/{todo_id}", {
    params: { path: { todo_id: todo.id }, header: { "If-Match": etag } },
  });
  if (deleted.error && deleted.error.code !== "not_found") {
    throw failure(deleted.response, deleted.error);
  }

  const me = await api.GET("/api/users/me");
  console.log(me.data?.subject, me.data?.email ?? "(no email)");
  return todos;
}

/** The planner (issue 15): a recurring todo with a reminder, a subtask, a move, what fires, what was done. */
export async function planner(baseUrl: string, token: string): Promise<string[]> {
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
  const review = await api.POST("/api/todos", {
    body: {
      title: "Weekly review",
      due_at: "2030-03-25T09:00:00+01:00",
      time_zone: "Europe/Berlin",
      recurrence: "FREQ=WEEKLY;BYDAY=MO;COUNT=3",
      reminders: [{ before_due: "PT15M" }, { at: "2030-03-25T07:00:00Z" }],
    },
  });
  if (review.error) throw new Error(describe(review.error));
  const parentId: string = review.data.id;
  const child = await api.POST("/api/todos", { body: { title: "Inbox zero", parent_id: parentId } });
  if (child.error) throw new Error(describe(child.error));

  // Manual order: first among the parent's subtasks; `position` sorts as plain strings.
  const moved = await api.POST("/api/todos/{todo_id}/move", {
    params: { path: { todo_id: child.data.id } },
    body: { after_id: null, parent_id: parentId },
  });
  if (moved.error) throw new Error(describe(moved.error));
  const position: string = moved.data.position;

  // Completing a recurring todo moves its due date on; it stays open.
  const done = await api.PATCH("/api/todos/{todo_id}", {
    params: { path: { todo_id: parentId } },
    body: { completed: true },
  });
  const nextDue: string | null | undefined = done.data?.due_at;

  const firing = await api.GET("/api/reminders", {
    params: { query: { from: "2030-03-25T00:00:00Z", to: "2030-04-01T00:00:00Z" } },
  });
  const history = await api.GET("/api/todos/{todo_id}/completions", { params: { path: { todo_id: parentId } } });
  const fires = (firing.data?.items ?? []).map((item) => `${item.fires_at} ${item.title}`);
  const completions = (history.data?.items ?? []).map((item) => item.completed_at);
  return [position, nextDue ?? "ended", ...fires, ...completions];
}
