%% The Erlang side of Tests/Integration/test_erlang.py: a real OTP node that talks to Brain's
%% Erlang transport the way an application written for the first Brain does.
%%
%% The test starts `erl -name ... -setcookie ... -noshell -eval 'brain_it:main()'` and drives
%% it over stdin/stdout: every stdin line is one Erlang expression ending in `.`; every
%% expression is evaluated in a fresh process (so its mailbox holds only the replies it asked
%% for), bounded by ?EVAL_LIMIT_MS, and answered by exactly one stdout line:
%%
%%   @@ ok <result printed with ~p on one line>
%%   @@ crash <exit reason>
%%   @@ timeout
%%
%% Other stdout lines (logger reports of the node) never start with "@@ ".
%% At start the node prints `@@ ready <node name>`; at end of input it halts.
%%
%% The helpers below are what the test's expressions call. Every wait in them is bounded.

-module(brain_it).

-export([main/0]).
-export([use/1, use/2, target/0, target_node/0]).
-export([s/2, g/2, g/3, p/1, send/1, await/1, quiet/1, answered/2]).
-export([set_get/2, check/2, check/3, call/1, call/2]).
-export([ping/0, connected/0, events/0, decodes_to/2]).
-export([wait_reply/3, bulk/2, summary/1]).

-define(EVAL_LIMIT_MS, 30000).
-define(REPLY_MS, 5000).
-define(WATCHER, brain_it_watcher).

%% ---- the driver loop ----------------------------------------------------------------------

main() ->
    start_watcher(),
    put_line("ready", atom_to_list(node())),
    loop().

loop() ->
    case io:get_line(standard_io, "") of
        eof ->
            halt(0);
        {error, _} ->
            halt(0);
        Line ->
            case string:trim(Line) of
                "" -> ok;
                Text -> answer(evaluate(Text))
            end,
            loop()
    end.

evaluate(Text) ->
    {Pid, Monitor} = spawn_monitor(fun() ->
        try eval(Text) of
            Value -> exit({brain_it_done, Value})
        catch
            Class:Reason -> exit({brain_it_crash, {Class, Reason}})
        end
    end),
    receive
        {'DOWN', Monitor, process, Pid, {brain_it_done, Value}} -> {ok, Value};
        {'DOWN', Monitor, process, Pid, {brain_it_crash, Failure}} -> {crash, Failure};
        {'DOWN', Monitor, process, Pid, Reason} -> {crash, Reason}
    after ?EVAL_LIMIT_MS ->
        exit(Pid, kill),
        receive {'DOWN', Monitor, process, Pid, _} -> ok end,
        timeout
    end.

eval(Text) ->
    {ok, Tokens, _} = erl_scan:string(Text),
    {ok, Exprs} = erl_parse:parse_exprs(Tokens),
    {value, Value, _} = erl_eval:exprs(Exprs, erl_eval:new_bindings()),
    Value.

answer({ok, Value}) -> put_line("ok", print(Value));
answer({crash, Reason}) -> put_line("crash", print(Reason));
answer(timeout) -> put_line("timeout", "").

print(Term) ->
    lists:flatten(io_lib:format("~1000000000p", [Term])).

put_line(Kind, Text) ->
    io:put_chars(standard_io, ["@@ ", Kind, " ", Text, "\n"]).

%% ---- node events: nodeup / nodedown of every node, kept until read ---------------------------

start_watcher() ->
    Parent = self(),
    Pid = spawn(fun() ->
        ok = net_kernel:monitor_nodes(true, [{node_type, all}]),
        Parent ! watching,
        watch([])
    end),
    register(?WATCHER, Pid),
    receive watching -> ok after 5000 -> exit(watcher_did_not_start) end.

watch(Events) ->
    receive
        {nodeup, Node, Info} -> watch([{nodeup, Node, proplists:get_value(node_type, Info)} | Events]);
        {nodedown, Node, Info} -> watch([{nodedown, Node, proplists:get_value(node_type, Info)} | Events]);
        {take, From} -> From ! {events, lists:reverse(Events)}, watch([])
    end.

%% The node events seen since the last call, oldest first: [{nodeup|nodedown, Node, Type}].
events() ->
    ?WATCHER ! {take, self()},
    receive {events, Events} -> Events after 5000 -> exit(watcher_silent) end.

%% ---- the target: {RegisteredName, Node} ---------------------------------------------------

use(Node) -> use(brain, Node).

use(Name, Node) ->
    persistent_term:put(brain_it_target, {Name, Node}),
    ok.

target() -> persistent_term:get(brain_it_target).

target_node() -> element(2, target()).

%% ---- the first Brain's messages -----------------------------------------------------------

%% {s, Id, Value}: fire and forget, as the first Brain's clients do.
s(Id, Value) -> send({s, Id, Value}).

%% {p, Id}: fire and forget.
p(Id) -> send({p, Id}).

%% {g, Consistency, Id, self(), null}; the reply, or no_reply after ?REPLY_MS.
g(Consistency, Id) -> g(Consistency, Id, ?REPLY_MS).

g(Consistency, Id, Ms) ->
    send({g, Consistency, Id, self(), null}),
    await(Ms).

send(Message) ->
    target() ! Message,
    ok.

%% The next message in this process's mailbox, or no_reply.
await(Ms) ->
    receive Message -> Message after Ms -> no_reply end.

%% silent if no message arrives within Ms, else {got, [Messages]} (everything that came).
quiet(Ms) ->
    receive
        Message -> {got, [Message | drain()]}
    after Ms -> silent
    end.

%% Sends each message in turn and waits Ms after each: [{Message, [Replies]}] for those
%% that were answered, [] when none was.
answered(Messages, Ms) ->
    lists:filtermap(fun(Message) ->
        ok = send(Message),
        case quiet(Ms) of
            silent -> false;
            {got, Replies} -> {true, {Message, Replies}}
        end
    end, Messages).

drain() ->
    receive Message -> [Message | drain()] after 200 -> [] end.

%% s then g with both consistencies, from one process: `same`, or what differed.
set_get(Id, Value) ->
    ok = s(Id, Value),
    check(Id, Value).

%% g with both consistencies: `same` when each answers {ok, V} with V =:= Value.
check(Id, Value) ->
    check(Id, Value, [true, false]).

check(Id, Value, Consistencies) ->
    Results = [{C, g(C, Id)} || C <- Consistencies],
    case [{C, Got} || {C, Got} <- Results, Got =/= {ok, Value}] of
        [] -> same;
        Wrong -> {different, {expected, {ok, summary(Value)}}, {got, [{C, summary(Got)} || {C, Got} <- Wrong]}}
    end.

%% A term as is, or, when it is large, its size, its hash and its first bytes in ETF.
summary(Term) ->
    case term_to_binary(Term) of
        Small when byte_size(Small) =< 4096 -> Term;
        Large -> {large_term, {etf_bytes, byte_size(Large)}, {phash2, erlang:phash2(Term)},
                  {etf_head, binary:part(Large, 0, 64)}}
    end.

%% Sets Prefix ++ "I" to {I, Prefix} for I in 1..N, then reads each back with g(true):
%% {ok, N}, or the first {mismatch, Id, {expected, _}, {got, _}}.
bulk(Prefix, N) ->
    Items = [{Prefix ++ integer_to_list(I), {I, Prefix}} || I <- lists:seq(1, N)],
    lists:foreach(fun({Id, Value}) -> s(Id, Value) end, Items),
    bulk_check(Items, N).

bulk_check([], N) -> {ok, N};
bulk_check([{Id, Value} | Rest], N) ->
    case g(true, Id) of
        {ok, Value} -> bulk_check(Rest, N);
        Got -> {mismatch, Id, {expected, {ok, Value}}, {got, Got}}
    end.

%% Retries g until a reply comes (a reconnecting client): {Reply, Attempts} or {no_reply, N}.
wait_reply(Consistency, Id, Attempts) ->
    wait_reply(Consistency, Id, Attempts, 1).

wait_reply(Consistency, Id, Attempts, N) ->
    case g(Consistency, Id, 1000) of
        no_reply when N < Attempts -> wait_reply(Consistency, Id, Attempts, N + 1);
        Reply -> {Reply, N}
    end.

%% ---- Brain2's operations as {Pid, Ref, Command} -------------------------------------------

%% Sends {self(), Ref, Command}; returns Result from {Ref, Result}, no_reply, or
%% {unexpected, Message} if anything else arrives first.
call(Command) -> call(Command, ?REPLY_MS).

call(Command, Ms) ->
    Ref = make_ref(),
    send({self(), Ref, Command}),
    receive
        {Ref, Result} -> Result;
        Other -> {unexpected, Other}
    after Ms -> no_reply
    end.

%% ---- the distribution layer ---------------------------------------------------------------

%% net_adm:ping of the target node (pong | pang), bounded by the evaluation limit.
ping() -> net_adm:ping(target_node()).

connected() -> lists:member(target_node(), nodes(connected)).

%% ---- the backend's bytes ------------------------------------------------------------------

%% `same` when the hex-encoded object decodes (binary_to_term) to exactly Value.
decodes_to(Hex, Value) ->
    Bytes = binary:decode_hex(list_to_binary(Hex)),
    case catch binary_to_term(Bytes) of
        Value -> same;
        Other -> {different, {expected, Value}, {got, Other}}
    end.
