%% What an Erlang shop runs today in Brain's place: a node that serves the first Brain's
%% messages from an ETS table. scripts/bench-erlang drives it and Brain with the same load
%% (erl_load.erl) and compares them.
%%
%% It registers a name (`brain` by default, as Brain does) and answers, with Brain's reply
%% shapes (docs/erlang.md):
%%
%%   {s, Id, Value}                    inserts {Id, Value}; no reply
%%   {g, Consistency, Id, Pid, null}   Pid ! {ok, Value} | ko
%%   {p, Id}                           nothing to write back; no reply
%%
%% `Id` is a binary or a string (a list of bytes); both name the same key, as in Brain, so a
%% string is turned into a binary first. A `g` whose `Id` is neither, or whose `Consistency`
%% is not `true` or `false`, is answered `{error, bad_command}`, as Brain answers it;
%% anything else is dropped.
%%
%% Two designs, chosen by the second argument of main/1:
%%
%%   direct (the default)  the registered process receives every message, reads or writes
%%                         the table and sends the reply itself: one process, no hand-off.
%%   pool                  the registered process only forwards each message to one of
%%                         `Workers` processes chosen by a hash of the key (so that messages
%%                         on one key stay in order), which do the table work and reply.
%%
%% `direct` is the default. On the benchmark machine (2 cores, see docs/benchmarks.md) the
%% two served the same messages/s within 1%: the table work is a small part of a message's
%% cost, most of which is the distribution itself (the socket, decoding, encoding the
%% reply), so spreading the table work over more processes buys nothing on two cores, and
%% `direct` is the simpler. The table is `set`, `public`, with `read_concurrency` and `write_concurrency` on,
%% as a table shared by many processes is.
%%
%% Started as
%%
%%   erl -noshell -name ets_bench@127.0.0.1 -setcookie C -pa <ebin> -run ets_node main brain direct
%%
%% it prints `ets_node ready <node> <name> <design>` on standard output once the name is
%% registered, and runs until the node is stopped (SIGTERM, init:stop/0).

-module(ets_node).

-export([main/1, start/2]).
-export([direct_loop/1, pool_dispatch/1, pool_worker/1]).

-define(TABLE_OPTIONS, [set, public, {read_concurrency, true}, {write_concurrency, true}]).

%% @doc Entry point for `erl -run ets_node main [Name [direct | pool [Workers]]]`.
main(Arguments) ->
    {Name, Design} =
        case Arguments of
            [] -> {brain, direct};
            [N] -> {list_to_atom(N), direct};
            [N, "direct"] -> {list_to_atom(N), direct};
            [N, "pool"] -> {list_to_atom(N), {pool, erlang:system_info(schedulers_online)}};
            [N, "pool", W] -> {list_to_atom(N), {pool, list_to_integer(W)}}
        end,
    {ok, _Pid} = start(Name, Design),
    io:format("ets_node ready ~s ~s ~p~n", [node(), Name, Design]).

%% @doc Creates the table and registers `Name` on a process serving it with `Design`
%% (`direct` or `{pool, Workers}`). The table belongs to the registered process.
start(Name, Design) ->
    Parent = self(),
    Pid = spawn(fun() ->
        Table = ets:new(brain_ets, ?TABLE_OPTIONS),
        true = register(Name, self()),
        Parent ! {self(), registered},
        case Design of
            direct ->
                direct_loop(Table);
            {pool, Workers} when is_integer(Workers), Workers > 0 ->
                Pool = list_to_tuple([spawn_link(?MODULE, pool_worker, [Table]) || _ <- lists:seq(1, Workers)]),
                pool_dispatch(Pool)
        end
    end),
    receive
        {Pid, registered} -> {ok, Pid}
    after 5000 ->
        exit(Pid, kill),
        {error, not_registered}
    end.

%% ---- direct: the registered process does everything ---------------------------------------

%% @doc The registered process of the `direct` design.
direct_loop(Table) ->
    receive
        Message ->
            handle(Table, Message),
            direct_loop(Table)
    end.

%% ---- pool: the registered process hands each message to a worker --------------------------

%% @doc The registered process of the `pool` design: forwards each message to the worker of
%% its key.
pool_dispatch(Pool) ->
    receive
        Message ->
            Worker = element(1 + erlang:phash2(key_of(Message), tuple_size(Pool)), Pool),
            Worker ! Message,
            pool_dispatch(Pool)
    end.

%% @doc One worker of the `pool` design.
pool_worker(Table) ->
    receive
        Message ->
            handle(Table, Message),
            pool_worker(Table)
    end.

key_of({s, Id, _}) -> Id;
key_of({g, _, Id, _, _}) -> Id;
key_of({p, Id}) -> Id;
key_of(_) -> undefined.

%% ---- the messages ---------------------------------------------------------------------------

handle(Table, {g, Consistency, Id, Pid, _}) when is_pid(Pid) ->
    Pid ! case key(Id) of
        {ok, Key} when is_boolean(Consistency) ->
            case ets:lookup(Table, Key) of
                [{_, Value}] -> {ok, Value};
                [] -> ko
            end;
        _ ->
            {error, bad_command}
    end;
handle(Table, {s, Id, Value}) ->
    case key(Id) of
        {ok, Key} -> ets:insert(Table, {Key, Value});
        error -> ok
    end;
handle(_Table, {p, _Id}) ->
    ok;
handle(_Table, _Other) ->
    ok.

%% A key as Brain reads it: a binary as is, a string of bytes as the binary of its bytes.
key(Id) when is_binary(Id) ->
    {ok, Id};
key(Id) when is_list(Id) ->
    try list_to_binary(Id) of
        Key -> {ok, Key}
    catch
        error:badarg -> error
    end;
key(_) ->
    error.
