%% The load of scripts/bench-erlang: many Erlang processes sending the first Brain's messages
%% to a registered name on a target node, the way an application written for the first Brain
%% does. The same load runs against Brain's Erlang transport and against ets_node.erl.
%%
%%   erl -noshell -name load@127.0.0.1 -setcookie C -pa <ebin> \
%%       -run erl_load main -extra --target brain_bench@127.0.0.1 --processes 50 --duration 10
%%
%% Options (all `--option value`, after `-extra` so that `erl` leaves them alone):
%%
%%   --target NODE       the node to load (required)
%%   --name NAME         the registered name messages go to (brain)
%%   --processes N       closed-loop processes (50)
%%   --keys N            key space: <<"key:00000000">> ... (100000)
%%   --value-size N      bytes of each value, a binary of letters and digits (100)
%%   --sets P            percentage of `s` messages; the rest are `g` (10)
%%   --duration S        seconds of measured load (10; a decimal is allowed)
%%   --messages N        measure N messages in all instead of a duration (0 = use --duration)
%%   --warmup BOOL       first set every key once, then read each back (true)
%%   --measure BOOL      run the measured load after the warm-up (true)
%%   --timeout MS        longest wait for one reply (5000)
%%   --seed N            random seed: keys, operations and values (1)
%%   --server-pid PID    the target's OS process, on this machine: its CPU time over the
%%                       measured window is reported (0 = none)
%%
%% Each process, in a closed loop, draws a key uniformly and sends either
%% `{s, Key, Value}` (one of 1024 values made from the seed) or `{g, true, Key, self(), null}`
%% and then waits for the reply. `s` has no reply in the first Brain's protocol (nor in Brain,
%% nor in ets_node), so a process goes on at once after an `s`; latency is therefore that of
%% `g`: from just before the send to the reply's arrival, in a histogram shared by all
%% processes (`counters`, 1/1024 relative precision, nanoseconds).
%%
%% Because `s` is not answered, the measured window does not end when the processes stop:
%% the target may still hold sets it has read and not carried out. So the main process then
%% sends a `g` for 64 keys chosen so that their FNV-1a hashes cover every residue modulo 64
%% (Brain spreads a connection's messages over lanes by FNV-1a of the key; every lane is then
%% behind one of these) and waits for the 64 replies. Messages from one node to another
%% arrive in the order they were sent, so every set was carried out before the last reply
%% came; the window ends there (`drain_ms` says how long that took).
%%
%% The result is one line of JSON on standard output (see result_json/1); the node then
%% halts with status 0. Failing to reach the target halts with status 2, a bad option with 3, a crashed
%% load process with 4.

-module(erl_load).

-export([main/0]).

-define(VALUES, 1024).
-define(SUB_BUCKET_BITS, 10).
-define(BUCKETS, 40 * 1024).
-define(DRAIN_RESIDUES, 64).

-record(options, {
    target :: atom(),
    name = brain :: atom(),
    processes = 50 :: pos_integer(),
    keys = 100000 :: pos_integer(),
    value_size = 100 :: non_neg_integer(),
    sets = 10 :: 0..100,
    duration_ms = 10000 :: non_neg_integer(),
    messages = 0 :: non_neg_integer(),
    warmup = true :: boolean(),
    measure = true :: boolean(),
    timeout = 5000 :: pos_integer(),
    seed = 1 :: integer(),
    server_pid = 0 :: non_neg_integer()
}).

%% What one process of the measured load did.
-record(tally, {gets = 0, sets = 0, misses = 0, errors = 0, error_kinds = #{}}).

%% ---- entry point ----------------------------------------------------------------------------

%% @doc Entry point for `erl -run erl_load main -extra --option value ...`: the options are
%% `erl`'s plain arguments.
main() ->
    Options =
        try
            parse(init:get_plain_arguments(), #options{})
        catch
            throw:{bad_option, What} ->
                io:format(standard_error, "erl_load: ~s~n", [What]),
                halt(3)
        end,
    connect(Options),
    Target = {Options#options.name, Options#options.target},
    persistent_term:put({?MODULE, keys}, make_keys(Options#options.keys)),
    persistent_term:put({?MODULE, values}, make_values(Options#options.value_size, Options#options.seed)),
    Warmup =
        case Options#options.warmup of
            true -> warmup(Target, Options);
            false -> null
        end,
    Measured =
        case Options#options.measure of
            true -> measure(Target, Options);
            false -> null
        end,
    io:format("~s~n", [result_json(#{options => Options, warmup => Warmup, measured => Measured})]),
    halt(0).

parse([], #options{target = undefined}) ->
    throw({bad_option, "--target NODE is required"});
parse([], Options) ->
    Options;
parse([Option, Value | Rest], Options) ->
    parse(Rest, option(Option, Value, Options));
parse([Option], _) ->
    throw({bad_option, io_lib:format("~s needs a value", [Option])}).

option("--target", V, O) -> O#options{target = list_to_atom(V)};
option("--name", V, O) -> O#options{name = list_to_atom(V)};
option("--processes", V, O) -> O#options{processes = positive(V)};
option("--keys", V, O) -> O#options{keys = positive(V)};
option("--value-size", V, O) -> O#options{value_size = integer(V)};
option("--sets", V, O) ->
    case integer(V) of
        P when P =< 100 -> O#options{sets = P};
        _ -> throw({bad_option, "--sets is a percentage, 0 to 100"})
    end;
option("--duration", V, O) -> O#options{duration_ms = round(number(V) * 1000)};
option("--messages", V, O) -> O#options{messages = integer(V)};
option("--warmup", V, O) -> O#options{warmup = boolean(V)};
option("--measure", V, O) -> O#options{measure = boolean(V)};
option("--timeout", V, O) -> O#options{timeout = positive(V)};
option("--seed", V, O) -> O#options{seed = integer(V)};
option("--server-pid", V, O) -> O#options{server_pid = integer(V)};
option(Other, _, _) -> throw({bad_option, io_lib:format("unknown option ~s", [Other])}).

integer(Text) ->
    try list_to_integer(Text) of
        N when N >= 0 -> N;
        _ -> throw({bad_option, io_lib:format("~s is negative", [Text])})
    catch
        error:badarg -> throw({bad_option, io_lib:format("~s is not an integer", [Text])})
    end.

positive(Text) ->
    case integer(Text) of
        0 -> throw({bad_option, "0 where at least 1 is needed"});
        N -> N
    end.

number(Text) ->
    try list_to_float(Text)
    catch error:badarg -> integer(Text)
    end.

boolean("true") -> true;
boolean("false") -> false;
boolean(Text) -> throw({bad_option, io_lib:format("~s is not true or false", [Text])}).

%% Pings the target for up to 10 s: it may be starting.
connect(#options{target = Node}) ->
    connect(Node, 100).

connect(Node, 0) ->
    io:format(standard_error, "erl_load: cannot reach ~s (is it running, with the same cookie?)~n", [Node]),
    halt(2);
connect(Node, Tries) ->
    case net_adm:ping(Node) of
        pong -> ok;
        pang -> timer:sleep(100), connect(Node, Tries - 1)
    end.

%% ---- keys and values ------------------------------------------------------------------------

make_keys(Count) ->
    list_to_tuple([iolist_to_binary(io_lib:format("key:~8..0B", [N])) || N <- lists:seq(0, Count - 1)]).

make_values(Size, Seed) ->
    State0 = rand:seed_s(exsss, {Seed, 7919, 104729}),
    Alphabet = <<"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789">>,
    {Values, _} = lists:mapfoldl(
        fun(_, State) -> random_bytes(Size, Alphabet, State, []) end,
        State0, lists:seq(1, ?VALUES)),
    list_to_tuple(Values).

random_bytes(0, _, State, Acc) ->
    {list_to_binary(Acc), State};
random_bytes(N, Alphabet, State, Acc) ->
    {I, Next} = rand:uniform_s(byte_size(Alphabet), State),
    random_bytes(N - 1, Alphabet, Next, [binary:at(Alphabet, I - 1) | Acc]).

key(Index) -> element(Index, persistent_term:get({?MODULE, keys})).

value(Index) -> element(Index, persistent_term:get({?MODULE, values})).

%% ---- warm-up: every key set once, then read back ----------------------------------------------

warmup(Target, #options{processes = Processes, keys = Keys, timeout = Timeout}) ->
    Started = erlang:monotonic_time(microsecond),
    Results = run_all(Processes, fun(Worker) ->
        Mine = lists:seq(Worker, Keys, Processes),
        [Target ! {s, key(I), value(1 + I rem ?VALUES)} || I <- Mine],
        lists:foldl(fun(I, Tally) -> read_back(Target, key(I), Timeout, Tally) end, #tally{}, Mine)
    end),
    Seconds = (erlang:monotonic_time(microsecond) - Started) / 1.0e6,
    Tally = merge(Results),
    #{messages => 2 * Keys, seconds => Seconds, misses => Tally#tally.misses,
      errors => Tally#tally.errors, error_kinds => Tally#tally.error_kinds}.

read_back(Target, Key, Timeout, Tally) ->
    Target ! {g, true, Key, self(), null},
    receive
        {ok, _} -> Tally;
        ko -> Tally#tally{misses = Tally#tally.misses + 1};
        Other -> failed(Tally, Other)
    after Timeout ->
        failed(Tally, timeout)
    end.

%% ---- the measured load ----------------------------------------------------------------------

measure(Target, Options = #options{processes = Processes, messages = Messages, keys = Keys}) ->
    Histogram = counters:new(?BUCKETS, [write_concurrency]),
    DrainKeys = drain_keys(Keys),
    Before = cpu_snapshot(Options#options.server_pid),
    Started = erlang:monotonic_time(nanosecond),
    Deadline = Started + Options#options.duration_ms * 1000000,
    Results = run_all(Processes, fun(Worker) ->
        rand:seed(exsss, {Options#options.seed, Worker, 1}),
        Quota = case Messages of
            0 -> infinity;
            _ -> Messages div Processes + (case Worker =< Messages rem Processes of true -> 1; false -> 0 end)
        end,
        loop(Target, Options, Histogram, Quota, Deadline, #tally{})
    end),
    Stopped = erlang:monotonic_time(nanosecond),
    DrainTally = lists:foldl(fun(Key, Tally) -> send_get(Target, Key, Tally) end, #tally{}, DrainKeys),
    Drain = collect(length(DrainKeys), Options#options.timeout, DrainTally),
    Ended = erlang:monotonic_time(nanosecond),
    Cpu = cpu_window(Before, cpu_snapshot(Options#options.server_pid)),
    Tally = merge(Results),
    Count = Tally#tally.gets + Tally#tally.sets,
    Seconds = (Ended - Started) / 1.0e9,
    #{messages => Count, gets => Tally#tally.gets, sets => Tally#tally.sets,
      seconds => Seconds, drain_ms => (Ended - Stopped) / 1.0e6,
      messages_per_sec => Count / Seconds,
      misses => Tally#tally.misses + Drain#tally.misses,
      errors => Tally#tally.errors + Drain#tally.errors,
      error_kinds => maps:merge(Tally#tally.error_kinds, Drain#tally.error_kinds),
      latency_us => percentiles(Histogram),
      cpu_seconds => Cpu,
      load_average => load_average()}.

%% The closed loop of one process, until its quota is used up or the deadline has passed.
loop(_Target, _Options, _Histogram, 0, _Deadline, Tally) ->
    Tally;
loop(Target, Options, Histogram, Quota, Deadline, Tally) ->
    Now = erlang:monotonic_time(nanosecond),
    case Quota =:= infinity andalso Now >= Deadline of
        true ->
            Tally;
        false ->
            Key = key(rand:uniform(Options#options.keys)),
            case rand:uniform(100) =< Options#options.sets of
                true ->
                    Target ! {s, Key, value(rand:uniform(?VALUES))},
                    next(Target, Options, Histogram, Quota, Deadline, Tally#tally{sets = Tally#tally.sets + 1});
                false ->
                    Target ! {g, true, Key, self(), null},
                    receive
                        Reply ->
                            record(Histogram, erlang:monotonic_time(nanosecond) - Now),
                            Counted = Tally#tally{gets = Tally#tally.gets + 1},
                            case Reply of
                                {ok, _} -> next(Target, Options, Histogram, Quota, Deadline, Counted);
                                ko -> next(Target, Options, Histogram, Quota, Deadline, Counted#tally{misses = Counted#tally.misses + 1});
                                Other -> next(Target, Options, Histogram, Quota, Deadline, failed(Counted, Other))
                            end
                    after Options#options.timeout ->
                        % A late reply could be taken for the next one: this process stops.
                        failed(Tally, timeout)
                    end
            end
    end.

next(Target, Options, Histogram, infinity, Deadline, Tally) ->
    loop(Target, Options, Histogram, infinity, Deadline, Tally);
next(Target, Options, Histogram, Quota, Deadline, Tally) ->
    loop(Target, Options, Histogram, Quota - 1, Deadline, Tally).

send_get(Target, Key, Tally) ->
    Target ! {g, true, Key, self(), null},
    Tally.

collect(0, _Timeout, Tally) ->
    Tally;
collect(Left, Timeout, Tally) ->
    receive
        {ok, _} -> collect(Left - 1, Timeout, Tally);
        ko -> collect(Left - 1, Timeout, Tally#tally{misses = Tally#tally.misses + 1});
        Other -> collect(Left - 1, Timeout, failed(Tally, Other))
    after Timeout ->
        failed(Tally, timeout)
    end.

failed(Tally = #tally{errors = Errors, error_kinds = Kinds}, What) ->
    Kind = case What of
        timeout -> timeout;
        {error, Code} when is_atom(Code) -> Code;
        _ -> unexpected_reply
    end,
    Tally#tally{errors = Errors + 1, error_kinds = maps:update_with(Kind, fun(N) -> N + 1 end, 1, Kinds)}.

%% Keys whose FNV-1a hashes cover every residue modulo ?DRAIN_RESIDUES (as many as the key
%% space allows).
drain_keys(Keys) ->
    drain_keys(1, Keys, #{}).

drain_keys(Index, Keys, Found) when Index > Keys; map_size(Found) =:= ?DRAIN_RESIDUES ->
    maps:values(Found);
drain_keys(Index, Keys, Found) ->
    Key = key(Index),
    Residue = fnv1a(Key) rem ?DRAIN_RESIDUES,
    drain_keys(Index + 1, Keys, maps:put(Residue, maps:get(Residue, Found, Key), Found)).

fnv1a(Bytes) ->
    fnv1a(Bytes, 16#cbf29ce484222325).

fnv1a(<<Byte, Rest/binary>>, Hash) ->
    fnv1a(Rest, ((Hash bxor Byte) * 16#100000001b3) band 16#ffffffffffffffff);
fnv1a(<<>>, Hash) ->
    Hash.

%% ---- CPU time over the measured window -----------------------------------------------------
%%
%% From /proc (Linux): this node's process, the target's process when it runs here, and the
%% whole machine's busy time. What the machine spent that neither the load nor the server
%% did is other processes' (`others`): a run where it is large was disturbed.

cpu_snapshot(ServerPid) ->
    #{load => process_ticks("self"),
      server => case ServerPid of 0 -> null; _ -> process_ticks(integer_to_list(ServerPid)) end,
      machine => machine_busy_ticks()}.

cpu_window(Before, After) ->
    Hz = clock_ticks(),
    Load = (maps:get(load, After) - maps:get(load, Before)) / Hz,
    Machine = (maps:get(machine, After) - maps:get(machine, Before)) / Hz,
    Server = case {maps:get(server, Before), maps:get(server, After)} of
        {B, A} when is_integer(B), is_integer(A) -> (A - B) / Hz;
        _ -> null
    end,
    Others = case Server of
        null -> null;
        _ -> Machine - Load - Server
    end,
    #{load => Load, server => Server, machine_busy => Machine, others => Others}.

%% utime + stime of a process, in clock ticks: the 14th and 15th fields of its stat file, the
%% 12th and 13th after the command name (which may hold spaces, hence the split on ") ").
process_ticks(Pid) ->
    case file:read_file("/proc/" ++ Pid ++ "/stat") of
        {ok, Stat} ->
            [_, AfterName] = string:split(Stat, <<") ">>, trailing),
            Fields = binary:split(AfterName, <<" ">>, [global]),
            binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields));
        {error, _} ->
            null
    end.

%% user + nice + system + irq + softirq + steal of the machine, in clock ticks.
machine_busy_ticks() ->
    {ok, Stat} = file:read_file("/proc/stat"),
    [CpuLine | _] = binary:split(Stat, <<"\n">>),
    [<<"cpu">> | Fields] = binary:split(CpuLine, <<" ">>, [global, trim_all]),
    [User, Nice, System, _Idle, _IoWait, Irq, SoftIrq, Steal | _] = [binary_to_integer(F) || F <- Fields],
    User + Nice + System + Irq + SoftIrq + Steal.

clock_ticks() ->
    case get(clock_ticks) of
        undefined ->
            Hz = case string:to_integer(os:cmd("getconf CLK_TCK")) of
                {N, _} when is_integer(N), N > 0 -> N;
                _ -> 100
            end,
            put(clock_ticks, Hz),
            Hz;
        Hz ->
            Hz
    end.

load_average() ->
    case file:read_file("/proc/loadavg") of
        {ok, Text} -> binary_to_float(hd(binary:split(Text, <<" ">>)));
        {error, _} -> null
    end.

%% ---- processes ------------------------------------------------------------------------------

%% Runs Fun(1..N) in N processes started together; returns their results. A process that
%% crashes halts the node (status 4): its figures would be missing.
run_all(N, Fun) ->
    Parent = self(),
    Ref = make_ref(),
    Workers = [spawn_monitor(fun() ->
                   receive {go, Ref} -> ok end,
                   Parent ! {done, Ref, self(), Fun(Worker)}
               end) || Worker <- lists:seq(1, N)],
    [Pid ! {go, Ref} || {Pid, _} <- Workers],
    [receive
         {done, Ref, Pid, Result} ->
             erlang:demonitor(Monitor, [flush]),
             Result;
         {'DOWN', Monitor, process, Pid, Reason} ->
             io:format(standard_error, "erl_load: a load process crashed: ~p~n", [Reason]),
             halt(4)
     end || {Pid, Monitor} <- Workers].

merge(Tallies) ->
    lists:foldl(fun(T, Acc) ->
        #tally{gets = Acc#tally.gets + T#tally.gets, sets = Acc#tally.sets + T#tally.sets,
               misses = Acc#tally.misses + T#tally.misses, errors = Acc#tally.errors + T#tally.errors,
               error_kinds = maps:fold(fun(K, V, M) -> maps:update_with(K, fun(N) -> N + V end, V, M) end,
                                       Acc#tally.error_kinds, T#tally.error_kinds)}
    end, #tally{}, Tallies).

%% ---- the latency histogram ------------------------------------------------------------------
%%
%% A value V (ns) below 2^(B+1) (B = ?SUB_BUCKET_BITS) has a bucket of its own; above, it is
%% shifted right by S bits so that it falls in [2^B, 2^(B+1)), and its bucket is
%% S * 2^B + (V bsr S): buckets stay contiguous and each is at most 1/2^B of its values wide.

record(Histogram, Nanoseconds) ->
    counters:add(Histogram, min(bucket(max(Nanoseconds, 0)), ?BUCKETS - 1) + 1, 1).

bucket(V) ->
    Shift = shift(V, 0),
    (Shift bsl ?SUB_BUCKET_BITS) + (V bsr Shift).

shift(V, S) when (V bsr S) >= (2 bsl ?SUB_BUCKET_BITS) -> shift(V, S + 1);
shift(_, S) -> S.

%% The middle of a bucket, in nanoseconds.
bucket_value(Index) when Index < (2 bsl ?SUB_BUCKET_BITS) ->
    Index;
bucket_value(Index) ->
    Shift = (Index bsr ?SUB_BUCKET_BITS) - 1,
    Mantissa = Index - (Shift bsl ?SUB_BUCKET_BITS),
    (Mantissa bsl Shift) + ((1 bsl Shift) - 1) / 2.

percentiles(Histogram) ->
    Counts = [counters:get(Histogram, I) || I <- lists:seq(1, ?BUCKETS)],
    Total = lists:sum(Counts),
    Points = [{p50, 0.50}, {p90, 0.90}, {p99, 0.99}, {p999, 0.999}, {max, 1.0}],
    Values = case Total of
        0 -> [{Name, 0.0} || {Name, _} <- Points];
        _ -> [{Name, at_rank(Counts, max(1, ceil(Fraction * Total)), 0, 0) / 1000} || {Name, Fraction} <- Points]
    end,
    maps:from_list([{count, Total} | Values]).

at_rank([Count | Rest], Rank, Index, Seen) ->
    case Seen + Count >= Rank of
        true -> bucket_value(Index);
        false -> at_rank(Rest, Rank, Index + 1, Seen + Count)
    end.

%% ---- JSON -----------------------------------------------------------------------------------

%% {"target": ..., "name": ..., "processes": ..., "keys": ..., "value_size": ..., "sets_percent": ...,
%%  "duration_s": ..., "messages_option": ...,
%%  "warmup": null | {"messages", "seconds", "misses", "errors", "error_kinds"},
%%  "measured": null | {"messages", "gets", "sets", "seconds", "drain_ms", "messages_per_sec",
%%                      "misses", "errors", "error_kinds", "load_average",
%%                      "latency_us": {"count", "p50", "p90", "p99", "p999", "max"},
%%                      "cpu_seconds": {"load", "server", "machine_busy", "others"}}}
result_json(#{options := O, warmup := Warmup, measured := Measured}) ->
    json(#{target => O#options.target, name => O#options.name, processes => O#options.processes,
           keys => O#options.keys, value_size => O#options.value_size, sets_percent => O#options.sets,
           duration_s => O#options.duration_ms / 1000, messages_option => O#options.messages,
           server_pid => O#options.server_pid,
           warmup => Warmup, measured => Measured}).

json(null) -> "null";
json(true) -> "true";
json(false) -> "false";
json(Atom) when is_atom(Atom) -> json(atom_to_binary(Atom));
json(N) when is_integer(N) -> integer_to_list(N);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 3}, compact]);
json(B) when is_binary(B) -> [$", escape(binary_to_list(B)), $"];
json(Map) when is_map(Map) ->
    Pairs = [[json(to_binary(K)), $:, json(V)] || {K, V} <- lists:sort(maps:to_list(Map))],
    [${, lists:join($,, Pairs), $}].

to_binary(K) when is_atom(K) -> atom_to_binary(K);
to_binary(K) when is_binary(K) -> K.

escape(Chars) ->
    [case C of
         $" -> "\\\"";
         $\\ -> "\\\\";
         _ when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
         _ -> C
     end || C <- Chars].
