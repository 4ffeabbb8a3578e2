-- The goods on each gate passage, by goods class: what the "loads by goods class" panels sum over a
-- month without joining every pallet of every passage to the tag registry again (83,000 passages and
-- two million pallets in a month of a busy zone: seconds per panel, now a read of one column).
--
-- goods is an array of (description, customs_status, pallets) over cargo_epcs, with the
-- tags as registered now: it is computed when a passage is written, and again for the passages of a
-- tag whose description or customs status changes (or that is registered or removed later), so it is
-- always what joining the registry would give. A tag not registered has description and
-- customs_status null.

-- A composite array, not JSON: a month of passages unnests without parsing text.
CREATE TYPE bondwatch_goods AS (description text, customs_status text, pallets integer);

CREATE FUNCTION bondwatch_passage_goods(cargo text[]) RETURNS bondwatch_goods[]
LANGUAGE sql STABLE
SET search_path = public, pg_temp AS $$
    SELECT coalesce(array_agg(ROW(g.description, g.customs_status, g.n)::bondwatch_goods
                              ORDER BY g.description, g.customs_status), '{}')
    FROM (
        SELECT t.description, t.customs_status, count(*)::integer AS n
        FROM unnest(cargo) AS c(epc)
        LEFT JOIN tags t ON t.epc = c.epc
        GROUP BY 1, 2
    ) AS g
$$;

ALTER TABLE gate_passages ADD COLUMN goods bondwatch_goods[] NOT NULL DEFAULT '{}';
UPDATE gate_passages SET goods = bondwatch_passage_goods(cargo_epcs) WHERE cardinality(cargo_epcs) > 0;

-- The panels read a month of passages by time for direction, decision and goods only: an index-only
-- scan of these instead of the rows, whose arrays of tags read make them a kilobyte or more each.
CREATE INDEX gate_passages_goods_by_time ON gate_passages (first_read_at) INCLUDE (direction, decision, goods);

CREATE FUNCTION bondwatch_passage_goods_set() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
BEGIN
    NEW.goods := bondwatch_passage_goods(NEW.cargo_epcs);
    RETURN NEW;
END
$$;
CREATE TRIGGER gate_passages_goods BEFORE INSERT OR UPDATE OF cargo_epcs ON gate_passages
    FOR EACH ROW EXECUTE FUNCTION bondwatch_passage_goods_set();

-- A tag's passages are found through the GIN index on epcs (cargo tags are among the epcs read).
CREATE FUNCTION bondwatch_tag_goods_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
DECLARE
    changed text := CASE WHEN TG_OP = 'DELETE' THEN OLD.epc ELSE NEW.epc END;
BEGIN
    UPDATE gate_passages SET goods = bondwatch_passage_goods(cargo_epcs)
    WHERE epcs @> ARRAY[changed] AND changed = ANY (cargo_epcs);
    IF TG_OP = 'UPDATE' AND OLD.epc <> NEW.epc THEN
        UPDATE gate_passages SET goods = bondwatch_passage_goods(cargo_epcs)
        WHERE epcs @> ARRAY[OLD.epc] AND OLD.epc = ANY (cargo_epcs);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tags_goods AFTER INSERT OR DELETE OR UPDATE OF epc, description, customs_status ON tags
    FOR EACH ROW EXECUTE FUNCTION bondwatch_tag_goods_changed();

REVOKE ALL ON FUNCTION bondwatch_passage_goods(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bondwatch_passage_goods(text[]) TO bondwatch_writer, bondwatch_reader;
